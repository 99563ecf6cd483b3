SELECT E'it\'s; escaped', e'back\\slash;';
SELECT E'\\';
SELECT 'standard\' AS s;
