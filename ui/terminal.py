"""`recsys chat`: the same Assistant in a terminal. Plain text out (no HTML to escape here)."""
from __future__ import annotations

from typing import Callable

from assistant.recommender import InvalidRequest, UnknownUser

COMMANDS = (":like N  :dislike N  thumbs up/down on pick N of the last list\n"
            ":history  what you have rated     :new  a new conversation     :help  this     :quit  leave")


def format_item(rank: int, rec, explanation: str | None = None) -> str:
    item = rec.item
    genres = ", ".join(item.genres)
    return f"{rank:2}. {item.label}  [{genres}]\n    {explanation if explanation is not None else rec.explanation}"


def format_reply(reply) -> str:
    lines = [reply.text] if reply.text else []
    lines.extend(format_item(rank, rec) for rank, rec in enumerate(reply.items, start=1))
    return "\n".join(lines)


def run_chat(assistant, user_id: str | None = None, k: int | None = None,
             read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> int:
    """The input loop. Returns 0 at :quit or end of input. Raises UnknownUser for a bad --user."""
    session = assistant.new_session(user_id)
    who = f"new user {session.user_id}" if session.is_new_user else f"user {session.user_id}"
    write(f"Chatting as {who}. Say what you feel like watching.\n{COMMANDS}")
    last = None
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            write("")
            return 0
        if not line:
            continue
        if line.startswith(":"):
            command, _, arg = line[1:].partition(" ")
            command = command.lower()
            if command in ("quit", "q", "exit"):
                return 0
            if command == "help":
                write(COMMANDS)
            elif command == "new":
                session = assistant.new_session(None if session.is_new_user else session.user_id)
                last = None
                write("New conversation: constraints cleared.")
            elif command == "history":
                items = assistant.recommender.items
                entries = sorted(assistant.history(session), key=lambda x: x.timestamp, reverse=True)[:15]
                write("\n".join(f"  {items[x.item_id].label if x.item_id in items else x.item_id}  "
                                f"({x.rating:g})" for x in entries) or "  (no history yet)")
            elif command in ("like", "dislike"):
                if last is None or not last.items:
                    write("Nothing to rate yet: ask for something first.")
                    continue
                try:
                    rank = int(arg)
                    rec = last.items[rank - 1]
                    if rank < 1:
                        raise IndexError
                except (ValueError, IndexError):
                    write(f"Give a pick number from 1 to {len(last.items)}, e.g. :{command} 2")
                    continue
                write(assistant.feedback(session, rec.item.item_id, liked=command == "like").message)
            else:
                write(f"Unknown command :{command}.\n{COMMANDS}")
            continue
        try:
            reply = assistant.reply(session, line, k)
        except (InvalidRequest, UnknownUser) as err:
            write(f"! {err}")
            continue
        write(format_reply(reply))
        if reply.items:
            last = reply
            for index, better in assistant.explain_stream(session, reply):
                write(f"    [{index + 1}] {better}")
