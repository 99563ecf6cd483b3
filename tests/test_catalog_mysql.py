"""The MySQL/MariaDB catalog reader, schema dump and scratch database, on a real server.

The exact values asserted are MariaDB's spelling (int(11), current_timestamp()); on a
MySQL server those tests skip and the rest run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import MYSQL_URL, ScratchDatabase
from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.backends.mysql import MySQLBackend
from sibila_sqlmig.catalog import Catalog, DbObject, Difference, compare, make_object
from sibila_sqlmig.catalog.mysql import dump_schema, read_catalog, scratch_database
from sibila_sqlmig.config import TableName, load_settings
from sibila_sqlmig.dburl import DatabaseURL
from sibila_sqlmig.errors import DatabaseError

TOOL = TableName("schema_migrations")
EXCLUDE = (TOOL, TOOL.journal, TOOL.lock)

# Every kind of object MariaDB has, portable SQL first; MARIADB_ONLY adds sequences.
RICH = [
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL,"
    " name VARCHAR(100) COLLATE utf8mb4_bin DEFAULT 'anon', note TEXT,"
    " status ENUM('new','active','gone') NOT NULL DEFAULT 'new', flags SET('a','b'),"
    " credit DECIMAL(10,2) DEFAULT 0.00 CHECK (credit >= 0),"
    " created DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,"
    " name_len INT AS (CHAR_LENGTH(name)) VIRTUAL,"
    " email_lc VARCHAR(200) AS (LOWER(email)) STORED, quote_default VARCHAR(10) DEFAULT 'it''s',"
    " UNIQUE KEY uq_email (email), KEY idx_name_prefix (name(10), created DESC),"
    " FULLTEXT KEY ft_note (note), CONSTRAINT chk_created CHECK (created > '2000-01-01'))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='people'",
    "CREATE TABLE orders (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, customer_id INT,"
    " total DECIMAL(10,2) NOT NULL, PRIMARY KEY (id), CONSTRAINT fk_orders_customer"
    " FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE ON UPDATE SET NULL)"
    " ENGINE=InnoDB",
    "CREATE TABLE log_m (id INT, msg VARCHAR(20) CHARACTER SET latin1) ENGINE=MyISAM"
    " ROW_FORMAT=FIXED",
    "CREATE TABLE parted (id INT NOT NULL, PRIMARY KEY (id)) PARTITION BY RANGE (id)"
    " (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
    "CREATE INDEX idx_orders_total ON orders (total)",
    "CREATE FUNCTION add_tax(amount DECIMAL(10,2), rate INT) RETURNS DECIMAL(10,2)"
    " DETERMINISTIC RETURN amount * (100 + rate) / 100",
    # The mariadb client drops the comments of a body it loads; the catalog does too.
    "CREATE PROCEDURE touch_customer(IN cid INT, OUT n INT) MODIFIES SQL DATA BEGIN\n"
    "  -- touch it\n  UPDATE customers SET note = 'x -- kept' WHERE id = cid;\n"
    "  SELECT COUNT(*) INTO n FROM customers; # counted\nEND",
    "CREATE VIEW v_customers AS SELECT id, email FROM customers WHERE status <> 'gone'",
    "CREATE VIEW v_rich AS SELECT c.id, COUNT(o.id) AS n FROM v_customers c"
    " LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id",
    # Sorts before the views it reads: the dump must still load it after them.
    "CREATE SQL SECURITY INVOKER VIEW a_view AS SELECT id, add_tax(n, 0) AS taxed FROM v_rich",
    "CREATE VIEW v_checked AS SELECT id, email FROM v_customers WHERE id > 0"
    " WITH CASCADED CHECK OPTION",
    "CREATE TRIGGER trg_orders_bi BEFORE INSERT ON orders FOR EACH ROW"
    " SET NEW.total = add_tax(NEW.total, 0)",
    "CREATE TRIGGER trg_orders_bi2 BEFORE INSERT ON orders FOR EACH ROW"
    " PRECEDES trg_orders_bi SET NEW.total = NEW.total + 0",
]
MARIADB_ONLY = [
    "CREATE SEQUENCE ticket_seq START WITH 100 INCREMENT BY 5",
    "CREATE TABLE tickets (id BIGINT NOT NULL DEFAULT NEXTVAL(ticket_seq) PRIMARY KEY)",
]

# The same schema built in another order, where the engine keeps none.
RICH_OTHER_ORDER = [
    RICH[3], RICH[2],
    # the unique key added afterwards rather than in CREATE TABLE: the same key
    RICH[0].replace(" UNIQUE KEY uq_email (email),", ""),
    "CREATE UNIQUE INDEX uq_email ON customers (email)",
    RICH[1].replace(" PRIMARY KEY (id),", " PRIMARY KEY (id), KEY idx_orders_total (total),"),
    RICH[6], RICH[5], RICH[7], RICH[10], RICH[8], RICH[9], RICH[11], RICH[12],
]


def _backend(url: str | DatabaseURL, tmp_path: Path) -> MySQLBackend:
    settings = load_settings(database=url if isinstance(url, str) else MYSQL_URL,
                             migrations=tmp_path, config=os.devnull, environ={})
    if isinstance(url, DatabaseURL):  # its text would show *** for the password
        settings = settings._replace(database=url)
    backend = backend_for(settings)
    assert isinstance(backend, MySQLBackend)
    backend.connect(create=True)
    return backend


def _url(name: str) -> str:
    return MYSQL_URL.rsplit("/", 1)[0] + "/" + name


def _is_mariadb(backend: MySQLBackend) -> bool:
    return "mariadb" in str(backend.query("SELECT VERSION()")[0][0]).lower()


def _build(backend: MySQLBackend, statements: list[str]) -> None:
    for statement in statements:
        backend.execute(statement)


def _rich(backend: MySQLBackend, statements: list[str] = RICH) -> None:
    _build(backend, statements + (MARIADB_ONLY if _is_mariadb(backend) else []))


@pytest.fixture
def mysql(mysql_db: ScratchDatabase, tmp_path: Path) -> Iterator[MySQLBackend]:
    """A backend connected to the test's fresh database."""
    backend = _backend(mysql_db.url, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def other(mysql_db: ScratchDatabase, tmp_path: Path) -> Iterator[MySQLBackend]:
    """A backend connected to a second fresh database on the same server."""
    admin = mysql_db.admin
    name = f"sqlmig_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    backend = _backend(_url(name), tmp_path)
    yield backend
    backend.close()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mariadb(mysql: MySQLBackend) -> MySQLBackend:
    if not _is_mariadb(mysql):
        pytest.skip("the exact values asserted are MariaDB's spelling")
    return mysql


def _subject(difference: Difference) -> DbObject:
    found = difference.actual if difference.actual is not None else difference.expected
    assert found is not None
    return found


def _keys(differences: list[Difference]) -> list[tuple[str, str, str, str]]:
    return [(found.change, _subject(found).kind, _subject(found).table, _subject(found).name)
            for found in differences]


def _catalog_text(catalog: Catalog) -> str:
    return repr(sorted(catalog.objects.values()))


# --- reading ------------------------------------------------------------------------------


def test_rich_schema_is_read_normalised(mariadb: MySQLBackend) -> None:
    _rich(mariadb)
    catalog = read_catalog(mariadb, EXCLUDE)
    objects = catalog.objects

    def get(kind: str, name: str, table: str = "") -> object:
        return objects[(kind, table, name)]

    assert catalog.kinds() == {"table": 5, "column": 18, "constraint": 8, "index": 4,
                               "view": 4, "trigger": 2, "function": 1, "procedure": 1,
                               "sequence": 1}
    assert get("table", "customers") == make_object("table", "customers", properties={
        "columns": ["id", "email", "name", "note", "status", "flags", "credit", "created",
                    "name_len", "email_lc", "quote_default"],
        "engine": "InnoDB", "collation": "utf8mb4_unicode_ci", "comment": "people"})
    assert get("table", "log_m") == make_object("table", "log_m", properties={
        "columns": ["id", "msg"], "engine": "MyISAM", "collation": "utf8mb4_general_ci",
        "options": "row_format=FIXED"})
    assert dict(objects[("table", "", "parted")].properties)["partitioning"] == \
        "RANGE (`id`): p0 (10), p1 (MAXVALUE)"
    column = {name: dict(objects[("column", "customers", name)].properties)
              for name in ("id", "name", "status", "created", "name_len", "email_lc",
                           "quote_default", "note", "credit")}
    assert column["id"] == {"type": "int(11)", "nullable": "no", "identity": "auto_increment"}
    # Only a collation other than the table's is listed; 'quoted' defaults stay SQL text.
    assert column["name"] == {"type": "varchar(100)", "nullable": "yes",
                              "collation": "utf8mb4_bin", "default": "'anon'"}
    assert column["status"] == {"type": "enum('new','active','gone')", "nullable": "no",
                                "default": "'new'"}
    assert column["created"] == {"type": "datetime", "nullable": "yes",
                                 "default": "current_timestamp()",
                                 "on_update": "current_timestamp()"}
    assert column["name_len"] == {"type": "int(11)", "nullable": "yes",
                                  "generated": "(char_length(`name`)) VIRTUAL"}
    assert column["email_lc"]["generated"] == "(lcase(`email`)) STORED"
    assert column["quote_default"]["default"] == "'it''s'"
    assert column["note"] == {"type": "text", "nullable": "yes"}  # DEFAULT NULL: none
    assert column["credit"]["default"] == "0.00"
    assert dict(objects[("column", "log_m", "msg")].properties)["collation"] == \
        "latin1_swedish_ci"
    # The sequence's qualifier `db`. is gone from the default.
    assert dict(objects[("column", "tickets", "id")].properties)["default"] == \
        "nextval(`ticket_seq`)"

    assert get("constraint", "PRIMARY", "customers") == make_object(
        "constraint", "PRIMARY", "customers",
        {"type": "primary key", "definition": "PRIMARY KEY (id)"})
    assert get("constraint", "uq_email", "customers") == make_object(
        "constraint", "uq_email", "customers", {"type": "unique", "definition": "UNIQUE (email)"})
    assert ("index", "customers", "uq_email") not in objects  # the constraint says it
    assert get("constraint", "fk_orders_customer", "orders") == make_object(
        "constraint", "fk_orders_customer", "orders", {
            "type": "foreign key", "definition": "FOREIGN KEY (customer_id) REFERENCES "
            "customers (id) ON DELETE CASCADE ON UPDATE SET NULL"})
    assert get("constraint", "chk_created", "customers") == make_object(
        "constraint", "chk_created", "customers",
        {"type": "check", "definition": "CHECK (`created` > '2000-01-01')"})
    # MariaDB names an unnamed column check after its column.
    assert dict(objects[("constraint", "customers", "credit")].properties)["definition"] == \
        "CHECK (`credit` >= 0)"
    assert get("index", "idx_name_prefix", "customers") == make_object(
        "index", "idx_name_prefix", "customers",
        {"unique": False, "columns": "name(10), created DESC", "method": "BTREE"})
    assert dict(objects[("index", "customers", "ft_note")].properties)["method"] == "FULLTEXT"
    # The index InnoDB made for the foreign key is an index like any other.
    assert get("index", "fk_orders_customer", "orders") == make_object(
        "index", "fk_orders_customer", "orders",
        {"unique": False, "columns": "customer_id", "method": "BTREE"})

    assert get("view", "v_customers") == make_object("view", "v_customers", properties={
        "definition": "select `customers`.`id` AS `id`,`customers`.`email` AS `email` from "
                      "`customers` where `customers`.`status` <> 'gone'",
        "security": "DEFINER", "algorithm": "UNDEFINED"})
    assert dict(objects[("view", "", "a_view")].properties)["security"] == "INVOKER"
    assert dict(objects[("view", "", "v_checked")].properties)["check_option"] == "CASCADED"
    assert get("trigger", "trg_orders_bi2", "orders") == make_object(
        "trigger", "trg_orders_bi2", "orders", {
            "timing": "BEFORE", "event": "INSERT", "order": 1,
            "definition": "SET NEW.total = NEW.total + 0"})
    assert dict(objects[("trigger", "orders", "trg_orders_bi")].properties)["order"] == "2"
    assert get("function", "add_tax") == make_object("function", "add_tax", properties={
        "arguments": "amount decimal(10,2), rate int(11)", "returns": "decimal(10,2)",
        "definition": "RETURN amount * (100 + rate) / 100", "language": "SQL",
        "deterministic": True, "data_access": "CONTAINS SQL", "security": "DEFINER"})
    procedure = dict(objects[("procedure", "", "touch_customer")].properties)
    assert procedure["arguments"] == "IN cid int(11), OUT n int(11)"
    assert procedure["definition"] == ("BEGIN UPDATE customers SET note = 'x -- kept' WHERE "
                                       "id = cid; SELECT COUNT(*) INTO n FROM customers; END")
    assert get("sequence", "ticket_seq") == make_object("sequence", "ticket_seq", properties={
        "start": 100, "increment": 5, "min": 1, "max": 9223372036854775806, "cache": 1000,
        "cycle": False})
    database = mariadb.url.database
    assert database not in _catalog_text(catalog)
    assert "root" not in _catalog_text(catalog)  # no definer


def test_the_same_sql_in_two_databases_reads_equal(mysql: MySQLBackend,
                                                   other: MySQLBackend) -> None:
    _rich(mysql)
    _rich(other)
    assert compare(read_catalog(mysql, EXCLUDE), read_catalog(other, EXCLUDE)) == []


def test_another_order_of_building_reads_equal(mysql: MySQLBackend,
                                               other: MySQLBackend) -> None:
    _rich(mysql)
    _rich(other, RICH_OTHER_ORDER)
    assert compare(read_catalog(mysql, EXCLUDE), read_catalog(other, EXCLUDE)) == []


def test_an_index_made_before_the_foreign_key_reads_as_one_made_after(
        mysql: MySQLBackend, other: MySQLBackend) -> None:
    """InnoDB drops the index it made for a foreign key once another one can serve."""
    for backend in (mysql, other):
        backend.execute("CREATE TABLE p (id INT PRIMARY KEY)")
        backend.execute("CREATE TABLE c (id INT PRIMARY KEY, p_id INT)")
    mysql.execute("ALTER TABLE c ADD CONSTRAINT fk_c_p FOREIGN KEY (p_id) REFERENCES p (id)")
    mysql.execute("CREATE INDEX idx_c_p ON c (p_id)")
    other.execute("CREATE INDEX idx_c_p ON c (p_id)")
    other.execute("ALTER TABLE c ADD CONSTRAINT fk_c_p FOREIGN KEY (p_id) REFERENCES p (id)")
    assert compare(read_catalog(mysql, EXCLUDE), read_catalog(other, EXCLUDE)) == []


BASE = [
    "CREATE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(20) NOT NULL,"
    " status ENUM('a','b') NOT NULL DEFAULT 'a', qty INT DEFAULT 0, note VARCHAR(50),"
    " CONSTRAINT chk_qty CHECK (qty >= 0), UNIQUE KEY uq_code (code))",
    "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, CONSTRAINT fk_child_parent"
    " FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE)",
    "CREATE TABLE note_log (id INT PRIMARY KEY, parent_id INT, msg TEXT) ENGINE=InnoDB",
    "CREATE VIEW v_parent AS SELECT id, code FROM parent",
    "CREATE FUNCTION f_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    "CREATE TRIGGER trg_parent_bi BEFORE INSERT ON parent FOR EACH ROW"
    " SET NEW.qty = COALESCE(NEW.qty, 0)",
]

# What a down.sql commonly leaves behind or gets wrong, and what compare() reports.
MISTAKES = {
    "index left": (["CREATE INDEX idx_extra ON parent (note)"],
                   [("added", "index", "parent", "idx_extra")]),
    "view left": (["CREATE VIEW v_extra AS SELECT 1 AS one"],
                  [("added", "view", "", "v_extra")]),
    "view redefined": (["CREATE OR REPLACE VIEW v_parent AS SELECT id FROM parent"],
                       [("changed", "view", "", "v_parent")]),
    "trigger left": (["CREATE TRIGGER trg_parent_bu BEFORE UPDATE ON parent FOR EACH ROW"
                      " SET NEW.qty = NEW.qty"],
                     [("added", "trigger", "parent", "trg_parent_bu")]),
    "trigger redefined": (["DROP TRIGGER trg_parent_bi",
                           "CREATE TRIGGER trg_parent_bi BEFORE INSERT ON parent FOR EACH ROW"
                           " SET NEW.qty = 1"],
                          [("changed", "trigger", "parent", "trg_parent_bi")]),
    "function left": (["CREATE FUNCTION f_extra() RETURNS INT DETERMINISTIC RETURN 1"],
                      [("added", "function", "", "f_extra")]),
    "function redefined": (["DROP FUNCTION f_double",
                            "CREATE FUNCTION f_double(x BIGINT) RETURNS BIGINT DETERMINISTIC"
                            " RETURN x * 2"],
                           [("changed", "function", "", "f_double")]),
    "procedure left": (["CREATE PROCEDURE p_extra() SELECT 1"],
                       [("added", "procedure", "", "p_extra")]),
    "enum label left": (["ALTER TABLE parent MODIFY status ENUM('a','b','c') NOT NULL"
                         " DEFAULT 'a'"],
                        [("changed", "column", "parent", "status")]),
    "column type": (["ALTER TABLE parent MODIFY qty BIGINT DEFAULT 0"],
                    [("changed", "column", "parent", "qty")]),
    "nullability": (["ALTER TABLE parent MODIFY note VARCHAR(50) NOT NULL"],
                    [("changed", "column", "parent", "note")]),
    "default": (["ALTER TABLE parent ALTER qty SET DEFAULT 1"],
                [("changed", "column", "parent", "qty")]),
    "column collation": (["ALTER TABLE parent MODIFY note VARCHAR(50) COLLATE utf8mb4_bin"],
                         [("changed", "column", "parent", "note")]),
    "column order": (["ALTER TABLE parent MODIFY note VARCHAR(50) AFTER id"],
                     [("changed", "table", "", "parent")]),
    # The table's column list changes too; the added column says it (compare).
    "column left": (["ALTER TABLE parent ADD COLUMN extra INT"],
                    [("added", "column", "parent", "extra")]),
    "columns reordered": (["ALTER TABLE note_log MODIFY COLUMN msg TEXT FIRST"],
                          [("changed", "table", "", "note_log")]),
    "check lost": (["ALTER TABLE parent DROP CONSTRAINT chk_qty"],
                   [("removed", "constraint", "parent", "chk_qty")]),
    "unique lost": (["ALTER TABLE parent DROP INDEX uq_code"],
                    [("removed", "constraint", "parent", "uq_code")]),
    "foreign key rule": (["ALTER TABLE child DROP FOREIGN KEY fk_child_parent",
                          "ALTER TABLE child ADD CONSTRAINT fk_child_parent FOREIGN KEY"
                          " (parent_id) REFERENCES parent (id)"],
                         [("changed", "constraint", "child", "fk_child_parent")]),
    "foreign key lost": (["ALTER TABLE child DROP FOREIGN KEY fk_child_parent"],
                         [("removed", "constraint", "child", "fk_child_parent")]),
    "engine": (["ALTER TABLE note_log ENGINE=MyISAM"],
               [("changed", "table", "", "note_log")]),
    "table left": (["CREATE TABLE extra (id INT)"], [("added", "table", "", "extra")]),
    "add then drop column": (["ALTER TABLE parent ADD COLUMN tmp INT FIRST",
                              "ALTER TABLE parent DROP COLUMN tmp"], []),
    # up.sql adds a foreign key on a column without an index (InnoDB makes one named
    # after the constraint); a down.sql that drops only the constraint leaves it.
    "foreign key dropped, its index left": (
        ["ALTER TABLE note_log ADD CONSTRAINT fk_note_parent FOREIGN KEY (parent_id)"
         " REFERENCES parent (id)",
         "ALTER TABLE note_log DROP FOREIGN KEY fk_note_parent"],
        [("added", "index", "note_log", "fk_note_parent")]),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_usual_mistake_is_seen(mysql: MySQLBackend, mistake: str) -> None:
    statements, expected = MISTAKES[mistake]
    _build(mysql, BASE)
    before = read_catalog(mysql, EXCLUDE)
    _build(mysql, statements)
    assert _keys(compare(before, read_catalog(mysql, EXCLUDE))) == expected


def test_a_table_collation_left_changed_is_seen(mysql: MySQLBackend) -> None:
    _build(mysql, BASE)
    before = read_catalog(mysql, EXCLUDE)
    mysql.execute("ALTER TABLE note_log DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    differences = compare(before, read_catalog(mysql, EXCLUDE))
    assert [(name, new) for name, _, new in differences[0].properties] == \
        [("collation", "utf8mb4_bin")]
    assert _subject(differences[0]).name == "note_log"


def test_comments_and_spacing_of_a_body_do_not_count(mysql: MySQLBackend,
                                                     other: MySQLBackend) -> None:
    mysql.execute("CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC\n"
                  "RETURN x   +  1 -- plus one\n/* done */")
    mysql.execute("CREATE TABLE t (a INT)")
    mysql.execute("CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW\n"
                  "  SET NEW.a = NEW.a # same\n")
    other.execute("CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x + 1")
    other.execute("CREATE TABLE t (a INT)")
    other.execute("CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.a = NEW.a")
    assert compare(read_catalog(mysql, EXCLUDE), read_catalog(other, EXCLUDE)) == []
    other.execute("DROP FUNCTION f")
    other.execute("CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x + 2")
    assert _keys(compare(read_catalog(mysql, EXCLUDE), read_catalog(other, EXCLUDE))) == \
        [("changed", "function", "", "f")]


def test_a_sequence_left_is_seen(mariadb: MySQLBackend) -> None:
    before = read_catalog(mariadb, EXCLUDE)
    mariadb.execute("CREATE SEQUENCE s_left")
    assert _keys(compare(before, read_catalog(mariadb, EXCLUDE))) == \
        [("added", "sequence", "", "s_left")]


def test_the_tools_tables_are_left_out(mysql: MySQLBackend) -> None:
    mysql.ensure_table()  # the tracking table and its journal
    mysql.execute(f"CREATE TABLE {TOOL.lock.name} (id INT PRIMARY KEY, holder TEXT)")
    mysql.execute("CREATE INDEX idx_applied ON schema_migrations (applied_at)")
    mysql.execute("CREATE TRIGGER trg_tool BEFORE INSERT ON schema_migrations FOR EACH ROW"
                  " SET NEW.description = NEW.description")
    mysql.execute("CREATE TABLE mine (id INT PRIMARY KEY)")
    tool = {table.name for table in EXCLUDE}
    catalog = read_catalog(mysql, EXCLUDE)
    assert set(catalog.kinds()) == {"table", "column", "constraint"}
    assert not [found for found in catalog.objects.values()
                if found.name in tool or found.table in tool or found.name == "trg_tool"]
    assert ("table", "", "mine") in catalog.objects
    everything = read_catalog(mysql, ())
    assert ("trigger", "schema_migrations", "trg_tool") in everything.objects
    assert ("table", "", TOOL.journal.name) in everything.objects


# --- the dump -----------------------------------------------------------------------------


def _load_with_client(url: DatabaseURL, text: str) -> None:
    """Load a dump as a user would: the engine's own client, the file on stdin."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        pytest.skip("no mariadb or mysql client on PATH")
    env = {key: value for key, value in os.environ.items() if key != "MYSQL_PWD"}
    if url.password:
        env["MYSQL_PWD"] = url.password  # never on the command line
    result = subprocess.run(
        [client, "-h", url.host, "-P", str(url.port or 3306), "-u", url.user or "root",
         url.database], input=text, text=True, capture_output=True, env=env, timeout=120,
        check=False)
    assert result.returncode == 0, result.stderr


def test_dump_is_deterministic_and_loads_with_the_client(mysql: MySQLBackend,
                                                         other: MySQLBackend,
                                                         tmp_path: Path) -> None:
    for backend in (mysql, other):
        _rich(backend)
        backend.ensure_table()
    # Rows move the AUTO_INCREMENT counters of one database only.
    mysql.execute("INSERT INTO customers (email) VALUES ('a@example.com'), ('b@example.com')")
    mysql.record("001", "first", None)
    tool_tables = (TOOL.journal, TOOL.lock)
    dump = dump_schema(mysql, tool_tables)
    assert dump_schema(mysql, tool_tables) == dump
    assert dump_schema(other, tool_tables) == dump
    assert dump.startswith("SET FOREIGN_KEY_CHECKS=0;\n")
    for absent in (mysql.url.database, other.url.database, "DEFINER=", "AUTO_INCREMENT=",
                   "/*!", TOOL.journal.name):
        assert absent not in dump
    assert "CREATE TABLE `schema_migrations`" in dump
    # a view that sorts first is created after the views it reads
    assert dump.index("VIEW `v_rich`") < dump.index("VIEW `a_view`")

    with scratch_database(mysql) as url:
        _load_with_client(url, dump)
        loaded = _backend(url, tmp_path)
        try:
            assert compare(read_catalog(mysql, tool_tables),
                           read_catalog(loaded, tool_tables)) == []
            # (the reloaded dump is not byte-identical: the client dropped the comments
            # of touch_customer's body, which the catalog does not compare)
            # the triggers fire in the same order as in the original
            assert read_catalog(loaded, ()).objects[("trigger", "orders", "trg_orders_bi2")] \
                == read_catalog(mysql, ()).objects[("trigger", "orders", "trg_orders_bi2")]
        finally:
            loaded.close()


def test_dump_of_an_empty_database_loads(mysql: MySQLBackend, tmp_path: Path) -> None:
    dump = dump_schema(mysql, EXCLUDE)
    assert dump == "SET FOREIGN_KEY_CHECKS=0;\nSET NAMES utf8mb4;\n\nSET FOREIGN_KEY_CHECKS=1;\n"
    with scratch_database(mysql) as url:
        _load_with_client(url, dump)


# --- the scratch database -----------------------------------------------------------------


def _exists(db: ScratchDatabase, name: str) -> bool:
    return bool(db.rows(f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
                        f"'{name}'"))


def test_scratch_database_is_made_beside_and_dropped(mysql_db: ScratchDatabase,
                                                     mysql: MySQLBackend,
                                                     tmp_path: Path) -> None:
    mysql.execute(f"ALTER DATABASE `{mysql.url.database}` CHARACTER SET latin1 "
                  "COLLATE latin1_bin")
    with scratch_database(mysql) as url:
        assert url.database.startswith("sqlmig_scratch_")
        assert (url.dialect, url.host, url.port, url.user, url.password, url.query) == (
            "mysql", mysql.url.host, mysql.url.port, mysql.url.user, mysql.url.password,
            mysql.url.query)
        assert mysql_db.rows("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                             "information_schema.SCHEMATA WHERE SCHEMA_NAME = "
                             f"'{url.database}'") == [("latin1", "latin1_bin")]
        inside = _backend(url, tmp_path)
        inside.execute("CREATE TABLE t (id INT)")
        assert read_catalog(inside, ()).kinds() == {"table": 1, "column": 1}
        inside.close()
    assert not _exists(mysql_db, url.database)


def test_scratch_database_is_dropped_after_an_error(mysql_db: ScratchDatabase,
                                                    mysql: MySQLBackend) -> None:
    with pytest.raises(RuntimeError, match="inside"), scratch_database(mysql) as url:
        assert _exists(mysql_db, url.database)
        raise RuntimeError("inside")
    assert not _exists(mysql_db, url.database)


def test_scratch_database_refused_says_what_to_do(mysql_db: ScratchDatabase,
                                                  mysql: MySQLBackend,
                                                  tmp_path: Path) -> None:
    """A user who may not create databases hears so, and about --scratch."""
    user, password = f"sqlmig_np_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    hosts = ("%", "localhost")
    try:
        for host in hosts:
            mysql_db.rows(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            mysql_db.rows(f"GRANT ALL ON `{mysql.url.database}`.* TO '{user}'@'{host}'")
    except Exception as error:  # the test server's admin may not create users
        pytest.skip(f"cannot create a user without privileges: {error}")
    try:
        url = mysql.url
        limited = _backend(DatabaseURL("mysql", host=url.host, port=url.port, user=user,
                                       password=password, database=url.database), tmp_path)
        try:
            with pytest.raises(DatabaseError) as caught, scratch_database(limited):
                pass
        finally:
            limited.close()
        message = str(caught.value)
        assert "Cannot create a scratch database" in message
        assert "--scratch URL" in message
        assert password not in message
    finally:
        for host in hosts:
            mysql_db.rows(f"DROP USER IF EXISTS '{user}'@'{host}'")
