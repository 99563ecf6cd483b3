#comment without a space; still a comment
# comment with a space;
-- dash comment;
SELECT 1--1;
/* block; comment */ SELECT 2 # trailing; comment
;
/*!40101 SET @saved_cs_client = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
