CREATE TABLE "a;b" ([c;d] INTEGER, `e;f` TEXT, "g""h" TEXT);
INSERT INTO "a;b" VALUES (1, 'it''s; fine', 'x');
SELECT [c;d], `e;f`, "g""h" FROM "a;b" WHERE `e;f` <> ''';''';
