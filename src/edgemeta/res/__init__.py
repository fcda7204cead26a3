"""Resources shipped with edgemeta (the default units of measure)."""
