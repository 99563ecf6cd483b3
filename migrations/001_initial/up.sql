-- Sibila's schema. IF NOT EXISTS adopts databases made by the legacy
-- start-up routine (sibila_sqlmig.tables()) as they are, rows included.
CREATE TABLE IF NOT EXISTS documents_info (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT,
    name TEXT,
    size INTEGER,
    pages INTEGER,
    mimetype TEXT
);

CREATE TABLE IF NOT EXISTS paragraphs_metadatas (
    uuid TEXT PRIMARY KEY,
    path TEXT,
    page INTEGER,
    name TEXT,
    source TEXT,
    letters INTEGER,
    content TEXT,
    distance REAL,
    mimetype TEXT,
    size INTEGER,
    phrases INTEGER,
    lines INTEGER,
    chunks INTEGER
);

CREATE INDEX IF NOT EXISTS idx_documents_path ON documents_info (path);
CREATE INDEX IF NOT EXISTS idx_paragraphs_path ON paragraphs_metadatas (path);
CREATE INDEX IF NOT EXISTS idx_paragraphs_page ON paragraphs_metadatas (page);
