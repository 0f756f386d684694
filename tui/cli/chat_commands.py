"""`chat` and `chats`: a conversation on stdin/stdout, and the stored ones."""

from __future__ import annotations

import json
import sys

from core.base.errors import UserError, require_utf8
from core.base.settings import SAMPLING_SETTINGS
from core.store.conversations import ChatStore, export_jsonl, export_markdown
from tui.cli.commands import load_model, open_store, print_json
from tui.cli.options import given


def cmd_chat(args) -> int:
    """One user message a line on stdin until EOF; each answered as it streams. Stored in the
    workspace as it goes (unless --no-save)."""
    from core.inference.chat import Chat, ChatDone
    from core.inference.generation import GenerationNotice, TokenEvent
    from core.inference.sampling import SamplingSettings

    settings = SamplingSettings(**given(args, SAMPLING_SETTINGS)).validate()
    session = load_model(args)
    if session.notice:
        print(session.notice, file=sys.stderr)
    chat = Chat(session, template=args.template, system=args.system)
    chats = cid = None
    if not args.no_save and (store := open_store()) is not None:
        chats = ChatStore(store)
        cid = chats.create(session.info.model, args.system, args.template, settings.as_record())
    for number, line in enumerate(sys.stdin, start=1):
        message = require_utf8(line.rstrip("\n"), f"stdin line {number}")
        if not message.strip():
            continue
        for event in chat.send(message, settings):
            if isinstance(event, GenerationNotice):
                print(f"note: {event.message}", file=sys.stderr)
            elif isinstance(event, TokenEvent):
                if args.jsonl:
                    print_json(event.as_json())
            elif isinstance(event, ChatDone):
                if chats is not None and cid is not None:
                    chats.save_messages(cid, chat.messages)
                if args.jsonl:
                    print_json(event.as_json())
                else:   # the reply as kept (up to the template's stop), one block per turn
                    print(event.text + "\n", flush=True)
    if cid is not None:
        print(f"conversation #{cid} saved (rugpt-tui chats --export {cid})", file=sys.stderr)
    return 0


def cmd_chats(args) -> int:
    store = open_store()
    if store is None:
        return 1
    chats = ChatStore(store)
    if args.export is not None:
        chat = chats.get(args.export)
        sys.stdout.write(export_jsonl(chat) if args.format == "jsonl" else export_markdown(chat))
        return 0
    rows = chats.list(search=args.search)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        raise UserError("no conversations yet" + (f" with {args.search!r}" if args.search else ""))
    for r in rows:
        print(f"#{r['id']:<4} {r['time'][:19].replace('T', ' ')}  {r['model']}  "
              f"{r['turns']} turns  {r['title']}")
    return 0
