-- Placeholder: version 7 belongs to another branch (0007_server_secret.sql). The runner wants
-- versions 1..n without gaps; delete this file when that branch's 0007 is merged (two files
-- numbered 7 make the runner refuse to start, so a forgotten placeholder cannot go unnoticed).
SELECT 1;
