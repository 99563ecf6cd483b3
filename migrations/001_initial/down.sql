DROP INDEX IF EXISTS idx_paragraphs_page;
DROP INDEX IF EXISTS idx_paragraphs_path;
DROP INDEX IF EXISTS idx_documents_path;
DROP TABLE IF EXISTS paragraphs_metadatas;
DROP TABLE IF EXISTS documents_info;
