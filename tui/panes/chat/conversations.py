"""The Chat pane's stored conversations: the list, switching, rename, delete, search, export
(all kept in the workspace, `core.store.conversations`)."""

from __future__ import annotations

from textual.widgets import Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from core.base.errors import UserError
from core.data.templates import TEMPLATE_CHOICES
from tui.panes.chat.widgets import Transcript
from tui.panes.host import host
from tui.widgets.fields import SettingField


class StoredConversations:
    """Mixed into the Chat pane, which holds `chat`, `conversation_id` and `turn`."""

    # -- stored conversations -----------------------------------------------------------------------

    def refresh_list(self, search: str | None = None) -> None:
        from core.store.conversations import ChatStore

        if host(self).store is None:
            return
        self._conversations = ChatStore(host(self).store).list(search=search, limit=200)
        options = self.query_one("#chat-list", OptionList)
        options.clear_options()
        options.add_options([Option(f"#{c['id']} {c['title']} · {c['turns']}") for c in self._conversations])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A conversation chosen in the list (a plain handler: `@on` is not seen in a mixin)."""
        from core.store.conversations import ChatStore

        if event.option_list.id != "chat-list" or self.turn_running:
            return
        stored = ChatStore(host(self).store).get(self._conversations[event.option_index]["id"])
        self.query_one("#chat-system", Input).value = stored["system"] or ""
        template = stored["template"] if stored["template"] in TEMPLATE_CHOICES else "auto"
        self.query_one("#chat-template", Select).value = template
        for field in self.query(SettingField):
            if field.setting.name in stored["settings"]:
                field.show(stored["settings"][field.setting.name])
        self.chat = self._make_chat(stored["messages"])
        self.conversation_id, self.turn = stored["id"], None
        self.query_one(Transcript).show(list(stored["messages"]), [])
        self.query_one("#chat-stats", Static).update(f"conversation #{stored['id']}: {stored['title']}")
        self.show_seen()

    def ask_export(self) -> None:
        from tui.widgets.dialogs import AskScreen

        if self.conversation_id is None:
            self.app.notify("Nothing to export yet", severity="warning")
            return
        self.app.push_screen(AskScreen("Export to (a new .md or .jsonl file)", f"chat-{self.conversation_id}.md"),
                             self.export_to)

    def export_to(self, path: str | None) -> None:
        from core.store.conversations import ChatStore, export_to_file

        if not path:
            return
        try:
            target = export_to_file(ChatStore(host(self).store).get(self.conversation_id), path)
        except UserError as exc:   # an existing file is never replaced
            self.app.notify(str(exc), title="Export chat", severity="error")
            return
        self.app.notify(f"written to {target}", title="Export chat")

    def ask_rename(self) -> None:
        from tui.widgets.dialogs import AskScreen

        if self.conversation_id is not None:
            self.app.push_screen(AskScreen("Title of this conversation"), self._rename)

    def _rename(self, title: str | None) -> None:
        from core.store.conversations import ChatStore

        if title:
            ChatStore(host(self).store).rename(self.conversation_id, title)
            self.refresh_list()

    def delete_chat(self) -> None:
        from core.store.conversations import ChatStore

        if self.conversation_id is not None and host(self).store is not None:
            ChatStore(host(self).store).delete(self.conversation_id)
            self.new_chat()
            self.refresh_list()

    def ask_search(self) -> None:
        from tui.widgets.dialogs import AskScreen

        self.app.push_screen(AskScreen("Conversations holding (empty: all)"),
                             lambda text: self.refresh_list(text or None))
