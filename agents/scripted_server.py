"""An OpenAI-compatible server of our own that replays scripted answers: the deterministic
double at the model seam. It speaks real HTTP, so the client, retries and timeouts under test
are the ones used against vLLM.

A script is a list of rules. A request goes to the first rule whose `match` regex is found in
its last user message and which has replies left. Each choice of the request consumes one
reply. A reply may carry an HTTP status (500 fails the whole request) or a delay.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    delay_s: float = 0.0
    tool_calls: list[dict] | None = None
    """[{"name": ..., "arguments": {...}}]: answered as OpenAI tool calls."""
    raw_body: dict | None = None
    """Sent as the whole 200 response instead of a chat completion: a server (or a proxy in
    front of it) that answers with the wrong shape."""


@dataclass
class Rule:
    match: str
    replies: list[Reply]
    repeat_last: bool = False
    """Keep answering with the last reply once the others are used up."""


@dataclass
class ScriptedServer:
    rules: list[Rule]
    honour_n: bool = True
    """False imitates llama.cpp, which returns one choice whatever `n` asks for."""
    model: str = "scripted"
    responder: Callable[[dict], list[Reply]] | None = None
    """Instead of rules: request body -> replies (one per choice), for answers that must be a
    function of the request (e.g. of its seed), whatever order requests come in."""
    requests: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_replies(self, text: str, n: int) -> list[Reply]:
        with self._lock:
            rule = next((r for r in self.rules if r.replies and re.search(r.match, text)), None)
            if rule is None:
                return [Reply(status=500, content="the script has no reply left for this request")]
            out: list[Reply] = []
            while len(out) < n and rule.replies:
                keep = rule.repeat_last and len(rule.replies) == 1
                reply = rule.replies[0] if keep else rule.replies.pop(0)
                if reply.status != 200:
                    return [reply]
                out.append(reply)
            return out

    def start(self) -> ScriptedServer:
        handler = type("Handler", (_Handler,), {"script": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _words(text: str) -> int:
    return len(text.split())


def _choice(index: int, reply: Reply) -> dict:
    message: dict = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}_{n}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
            }
            for n, call in enumerate(reply.tool_calls)
        ]
    finish = "tool_calls" if reply.tool_calls else reply.finish_reason
    return {"index": index, "finish_reason": finish, "message": message}


def _truncate(reply: Reply, max_tokens: int | None) -> Reply:
    """As a real server does: stop at max_tokens (a token is a word here) and say so."""
    if max_tokens is None or _words(reply.content) <= max_tokens:
        return reply
    kept = " ".join(reply.content.split()[:max_tokens])
    return Reply(kept, "length", reply.status, reply.delay_s, reply.tool_calls, reply.raw_body)


class _Handler(BaseHTTPRequestHandler):
    script: ScriptedServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout); nothing to tell it

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(
                200, {"object": "list", "data": [{"id": self.script.model, "object": "model"}]}
            )
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if self.path.rstrip("/").endswith("/tokenize"):  # llama-server's: a word is a token here
            self._send(200, {"tokens": list(range(_words(body.get("content", ""))))})
            return
        self.script.requests.append(body)
        n = int(body.get("n") or 1) if self.script.honour_n else 1
        user = [m["content"] for m in body.get("messages", []) if m["role"] == "user"]
        if self.script.responder:
            replies = self.script.responder({**body, "n": n})
        else:
            replies = self.script.next_replies(user[-1] if user else "", n)
        time.sleep(max(r.delay_s for r in replies))
        if replies[0].status != 200:
            self._send(replies[0].status, {"error": {"message": replies[0].content or "scripted"}})
            return
        if replies[0].raw_body is not None:
            self._send(200, replies[0].raw_body)
            return
        limit = body.get("max_tokens")
        replies = [_truncate(r, limit) for r in replies]
        prompt = sum(_words(m.get("content") or "") for m in body.get("messages", []))
        self._send(
            200,
            {
                "id": f"scripted-{len(self.script.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.script.model,
                "choices": [_choice(i, r) for i, r in enumerate(replies)],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": sum(_words(r.content) for r in replies),
                    "total_tokens": prompt + sum(_words(r.content) for r in replies),
                },
            },
        )


def main(argv: list[str] | None = None) -> None:
    """`python -m agents.scripted_server --port P --reply TEXT [--model NAME]`: a server that
    always answers TEXT (a stand-in model server for tests of server orchestration)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", default="ok")
    parser.add_argument("--model", default="scripted")
    args = parser.parse_args(argv)
    script = ScriptedServer([Rule("", [Reply(args.reply)], repeat_last=True)], model=args.model)
    handler = type("Handler", (_Handler,), {"script": script})
    ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
