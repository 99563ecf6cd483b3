/* outer /* inner */ still comment; */
SELECT 1;
/* a /* b /* c; */ */ ; */ SELECT 2 /* x; /* y */ */;
-- line comment; /* not a block
SELECT 3;
