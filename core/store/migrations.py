"""The workspace database's schema, version by version: `Store.open` applies the steps a
database has not seen yet (its `user_version` counts them)."""

# One list of statements per schema version; the database's `user_version` says how many
# have been applied. Never edit a released step: add one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE generations (
            id INTEGER PRIMARY KEY, time TEXT NOT NULL, model TEXT NOT NULL,
            prompt TEXT NOT NULL, text TEXT NOT NULL, seed INTEGER, settings TEXT NOT NULL,
            new_tokens INTEGER, tokens_per_s REAL, stop_reason TEXT)""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY, time TEXT NOT NULL, model TEXT NOT NULL,
            train TEXT NOT NULL, data_hash TEXT, config TEXT NOT NULL,
            status TEXT NOT NULL, steps INTEGER NOT NULL DEFAULT 0, eval_loss REAL,
            out TEXT, ended TEXT, error TEXT, pid INTEGER, host TEXT)""",
        """CREATE TABLE run_steps (
            run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL,
            loss REAL, lr REAL, tokens_per_s REAL, epoch REAL, PRIMARY KEY (run_id, step))""",
        """CREATE TABLE run_evals (
            run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL,
            eval_loss REAL, perplexity REAL, PRIMARY KEY (run_id, step))""",
        """CREATE TABLE run_samples (
            run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, text TEXT)""",
        """CREATE TABLE run_notes (
            run_id INTEGER NOT NULL REFERENCES runs(id), kind TEXT NOT NULL, message TEXT)""",
        "CREATE INDEX generations_time ON generations(time)",
    ],
    [   # 2: how long a run is (for the ETA of a run in another process), and whether its
        # end has been seen (a run that ended while nobody watched is announced)
        "ALTER TABLE runs ADD COLUMN total_steps INTEGER",
        "ALTER TABLE runs ADD COLUMN seen INTEGER NOT NULL DEFAULT 0",
    ],
    [   # 3: conversations of the Chat pane and `chat` (core.store.conversations)
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY, title TEXT NOT NULL, created TEXT NOT NULL,
            updated TEXT NOT NULL, model TEXT NOT NULL, system TEXT, template TEXT NOT NULL,
            settings TEXT NOT NULL)""",
        """CREATE TABLE messages (
            conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
            PRIMARY KEY (conversation, idx))""",
    ],
    [   # 4: the later run whose save replaced this run's model in its folder
        "ALTER TABLE runs ADD COLUMN replaced_by INTEGER",
    ],
    [   # 5: models scored on held-out data (`rugpt-tui eval`), for the app to show
        """CREATE TABLE model_scores (
            id INTEGER PRIMARY KEY, time TEXT NOT NULL, model TEXT NOT NULL,
            data TEXT NOT NULL, data_hash TEXT, block_size INTEGER NOT NULL,
            loss REAL NOT NULL, tokens INTEGER NOT NULL, seconds REAL)""",
        "CREATE INDEX model_scores_data ON model_scores(data_hash, model)",
    ],
    [   # 6: tokens trained by each step, for the loss chart's tokens-seen axis
        "ALTER TABLE run_steps ADD COLUMN tokens INTEGER",
    ],
    [   # 7: the queue of runs a headless runner starts one after another (core.queue), the
        # sweeps that fill it, and the hardware's figures sampled at each evaluation
        "ALTER TABLE runs ADD COLUMN sweep INTEGER",
        """CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY, time TEXT NOT NULL, settings TEXT NOT NULL)""",
        """CREATE TABLE queue (
            id INTEGER PRIMARY KEY, position REAL NOT NULL, added TEXT NOT NULL,
            model TEXT NOT NULL, config TEXT NOT NULL, sweep INTEGER, name TEXT,
            state TEXT NOT NULL, run_id INTEGER, pid INTEGER, host TEXT)""",
        "CREATE TABLE queue_flags (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE run_hardware (
            run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL,
            sample TEXT NOT NULL)""",
    ],
]
