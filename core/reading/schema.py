"""The results store's schema: one numbered migration per version (PRAGMA user_version).

`MIGRATIONS[i]` upgrades a database from version i to i + 1; a database is opened by
running every step from its version up to `SCHEMA_VERSION` in one transaction. Steps
are never edited once released: a user's database may stand at any of them.
"""
from __future__ import annotations

SCHEMA_VERSION = 4

MIGRATIONS = {
    0: """
    CREATE TABLE results (
        study        TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        model_hash   TEXT    NOT NULL,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        model        TEXT    NOT NULL,
        model_version TEXT   NOT NULL,
        probability  REAL,
        threshold    REAL    NOT NULL,
        error        TEXT,
        kind         TEXT    NOT NULL,
        meta         TEXT    NOT NULL,
        image_shape  TEXT,
        cam          BLOB,
        cam_shape    TEXT,
        stored_at    TEXT    NOT NULL,
        PRIMARY KEY (study, path, model_hash)
    );
    CREATE INDEX results_by_path ON results (path, model_hash);
    CREATE TABLE decisions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        study        TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        decision     TEXT    NOT NULL,
        ai_call      TEXT,
        reader_label TEXT,
        time         TEXT    NOT NULL,
        model        TEXT    NOT NULL,
        model_hash   TEXT    NOT NULL,
        probability  REAL,
        threshold    REAL    NOT NULL,
        undone       INTEGER NOT NULL DEFAULT 0,
        undone_time  TEXT
    );
    CREATE INDEX decisions_by_study ON decisions (study, path);
    CREATE INDEX decisions_by_path ON decisions (path);
    """,
    # Scope check (core.models.scope): the reason an image is out of scope ("" = in scope)
    # and the content detector's score. NULL scope = stored before the check existed:
    # get_result does not reuse such rows, so they are screened again.
    1: """
    ALTER TABLE results ADD COLUMN scope TEXT;
    ALTER TABLE results ADD COLUMN scope_score REAL;
    """,
    # The reading record. Releases 0.2-0.3 created the first three tables at every open,
    # outside the numbering (hence IF NOT EXISTS: such a database already has them).
    # decision_details: who decided and the file's identity (size, mtime) at that moment,
    # so a decision follows the image into any folder view but not a changed file.
    # Sign-offs now keep the threshold and the counts they were signed with; amendments
    # say who re-opened a signed-off study, when and why.
    2: """
    CREATE TABLE IF NOT EXISTS decision_details (
        decision_id INTEGER PRIMARY KEY,
        reader      TEXT    NOT NULL DEFAULT '',
        size        INTEGER,
        mtime_ns    INTEGER
    );
    CREATE TABLE IF NOT EXISTS study_signoffs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        study       TEXT    NOT NULL,
        reader      TEXT    NOT NULL,
        time        TEXT    NOT NULL,
        model       TEXT    NOT NULL,
        images      INTEGER NOT NULL,
        withdrawn   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS signoffs_by_study ON study_signoffs (study);
    CREATE TABLE IF NOT EXISTS decision_reasons (
        decision_id INTEGER PRIMARY KEY,
        reason      TEXT    NOT NULL
    );
    ALTER TABLE study_signoffs ADD COLUMN threshold REAL;
    ALTER TABLE study_signoffs ADD COLUMN counts TEXT;
    CREATE TABLE study_amendments (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        study       TEXT    NOT NULL,
        signoff_id  INTEGER,
        reader      TEXT    NOT NULL,
        time        TEXT    NOT NULL,
        reason      TEXT    NOT NULL
    );
    CREATE INDEX amendments_by_study ON study_amendments (study);
    """,
    # Provenance of each result: the PneumoScan version that made it and how it prepared
    # the film (core.imaging.preprocessing.FILM_PREPARATION); and the version a study was
    # signed off in. NULL = stored before 0.4.2: not recorded (0.4.1 already trimmed blank
    # borders, 0.4.0 did not). Such results are still reused, never silently replaced:
    # what a reader signed stays as it was signed.
    3: """
    ALTER TABLE results ADD COLUMN software_version TEXT;
    ALTER TABLE results ADD COLUMN film_preparation INTEGER;
    ALTER TABLE study_signoffs ADD COLUMN software_version TEXT;
    """,
}


def statements(step: int) -> list[str]:
    return [s for s in MIGRATIONS[step].split(";") if s.strip()]
