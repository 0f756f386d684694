"""Conversations in the workspace database, stored as they happen.

    chats = ChatStore(Store.open())
    cid = chats.create("demo", system=None, template="auto", settings={})
    chats.save_messages(cid, chat.messages)    # after every turn
    chats.list(search="кот"); chats.get(cid); chats.rename(cid, "…"); chats.delete(cid)

Export: Markdown to read, and JSON lines in the training format
(`{"messages": [{"role", "content"}, …]}`), so your own chats become training data.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.base.errors import UserError
from core.store.database import Store, now_iso

TITLE_CHARS = 60


def title_of(messages: list[dict]) -> str:
    first = next((m["content"] for m in messages if m["role"] == "user"), "")
    line = " ".join(first.split())
    return (line[: TITLE_CHARS - 1] + "…") if len(line) > TITLE_CHARS else (line or "new chat")


class ChatStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, model: str, system: str | None, template: str, settings: dict) -> int:
        now = now_iso()
        with self.store.lock:
            cursor = self.store.db.execute(
                "INSERT INTO conversations (title, created, updated, model, system, template, settings) "
                "VALUES (?,?,?,?,?,?,?)", ("new chat", now, now, model, system, template,
                                           json.dumps(settings, ensure_ascii=False)))
            return int(cursor.lastrowid)

    def save_messages(self, cid: int, messages: list[dict], system: str | None = None,
                      settings: dict | None = None) -> None:
        """The conversation's messages as they are now (a regenerated or edited turn
        replaces the old one); a new conversation takes its first message as its title."""
        statements = [("DELETE FROM messages WHERE conversation = ?", (cid,))]
        statements += [("INSERT INTO messages (conversation, idx, role, content) VALUES (?,?,?,?)",
                        (cid, i, m["role"], m["content"])) for i, m in enumerate(messages)]
        statements.append(("UPDATE conversations SET updated = ?, title = CASE WHEN title = 'new chat' "
                           "THEN ? ELSE title END WHERE id = ?", (now_iso(), title_of(messages), cid)))
        if system is not None or settings is not None:
            statements.append(("UPDATE conversations SET system = ?, settings = ? WHERE id = ?",
                               (system, json.dumps(settings or {}, ensure_ascii=False), cid)))
        self.store.write(statements)

    def list(self, search: str | None = None, limit: int = 500) -> list[dict]:
        """Newest first: {id, title, time, model, turns}; `search` matches titles and messages."""
        sql = ("SELECT c.id, c.title, c.updated AS time, c.model, "
               "(SELECT count(*) FROM messages m WHERE m.conversation = c.id AND m.role = 'user') AS turns "
               "FROM conversations c")
        args: tuple = ()
        if search:
            sql += (" WHERE contains(c.title, ?) OR EXISTS (SELECT 1 FROM messages m WHERE "
                    "m.conversation = c.id AND contains(m.content, ?))")
            args = (search.casefold(),) * 2
        return self.store.read(sql + " ORDER BY c.updated DESC, c.id DESC LIMIT ?", (*args, limit))

    def get(self, cid: int) -> dict:
        rows = self.store.read("SELECT * FROM conversations WHERE id = ?", (cid,))
        if not rows:
            raise UserError(f"no conversation #{cid} (rugpt-tui chats lists them)")
        chat = rows[0]
        chat["settings"] = json.loads(chat["settings"])
        chat["messages"] = self.store.read(
            "SELECT role, content FROM messages WHERE conversation = ? ORDER BY idx", (cid,))
        return chat

    def rename(self, cid: int, title: str) -> None:
        self.store.write([("UPDATE conversations SET title = ? WHERE id = ?",
                            (title.strip() or "new chat", cid))])

    def delete(self, cid: int) -> None:
        self.store.write([("DELETE FROM messages WHERE conversation = ?", (cid,)),
                           ("DELETE FROM conversations WHERE id = ?", (cid,))])


def export_markdown(chat: dict) -> str:
    lines = [f"# {chat['title']}", "", f"*{chat['model']} · template {chat['template']} · "
             f"{chat['updated']}*", ""]
    if chat.get("system"):
        lines += ["**System:** " + chat["system"], ""]
    for m in chat["messages"]:
        lines += [f"**{m['role'].capitalize()}:** {m['content']}", ""]
    return "\n".join(lines)


def export_jsonl(chat: dict) -> str:
    """One line in the training format: the system prompt first, then the turns."""
    messages = ([{"role": "system", "content": chat["system"]}] if chat.get("system") else [])
    messages += [{"role": m["role"], "content": m["content"]} for m in chat["messages"]]
    return json.dumps({"messages": messages}, ensure_ascii=False) + "\n"


def export_to_file(chat: dict, path: str | Path) -> Path:
    """The conversation written to a new file — JSON lines for `.jsonl`, else Markdown. An
    existing file is never replaced (one line says so)."""
    target = Path(path).expanduser()
    text = export_jsonl(chat) if target.suffix == ".jsonl" else export_markdown(chat)
    try:
        with open(target, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise UserError(f"{target}: already exists; choose a new name") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot write it ({exc.strerror})") from None
    return target
