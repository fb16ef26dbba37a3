from __future__ import annotations

import pytest

from storage.migration_lint import problems
from storage.migrator import discover


@pytest.mark.parametrize("migration", discover(), ids=lambda m: m.filename)
def test_every_migration_is_additive(migration):
    assert problems(migration.sql) == [], f"{migration.filename} is destructive"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE users;", "drops a table"),
        ("ALTER TABLE users DROP COLUMN name;", "drops a column"),
        ("ALTER TABLE users RENAME COLUMN a TO b;", "renames a table or column"),
        ("ALTER TABLE users RENAME TO people;", "renames a table or column"),
        ("ALTER TABLE users ALTER COLUMN name TYPE varchar(10);", "changes a column type"),
        ("ALTER TABLE users ALTER COLUMN name SET DATA TYPE int;", "changes a column type"),
        ("ALTER TABLE users ADD COLUMN age integer NOT NULL;", "adds a NOT NULL column without a default"),
        ("ALTER TABLE users ALTER COLUMN age SET NOT NULL;", "makes an existing column NOT NULL"),
        ("TRUNCATE users;", "deletes all rows"),
    ],
)
def test_destructive_statements_are_found(sql, expected):
    assert expected in problems(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE users ADD COLUMN age integer NOT NULL DEFAULT 0;",
        "ALTER TABLE users ADD COLUMN nickname text;",
        "CREATE TABLE t (id bigint NOT NULL, CONSTRAINT t_pkey PRIMARY KEY (id));",
        "CREATE INDEX t_idx ON t (id);",
        "-- we never DROP TABLE here\nCREATE TABLE x (a int);",
    ],
)
def test_additive_statements_pass(sql):
    assert problems(sql) == []


def test_explicit_approval_marker_silences_the_check():
    sql = "-- migration: approved-destructive table was never used (reviewed in #12)\nDROP TABLE old;"
    assert problems(sql) == []
    # the marker needs a reason
    assert problems("-- migration: approved-destructive\nDROP TABLE old;") == ["drops a table"]
