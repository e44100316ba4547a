// An editor on the official ACP TypeScript SDK (@agentclientprotocol/sdk,
// pinned by tests/mcp/setup) driving the real `airlock acp` against a
// scripted model, as tests/acp/run sets it up (inside a network namespace
// holding loopback alone):
//   initialize; session/new (its modes); a prompt whose edit is asked with
//   its diff and allowed once (the file changes); a turn cancelled while its
//   answer streams; session/set_mode plan, after which an edit is refused
//   without a question; then a second `airlock acp` loads the session
//   (session/load replays the conversation) and continues it. The audit log
//   must name this client as the approver, and verify.
//
// usage: node client.mjs   (environment: ACP_SDK, AIRLOCK_BIN, MODEL_URL, REPO, HOME_DIR, STATE)
// Prints one line per check and exits non-zero on the first failure.

import { spawn, spawnSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const SDK = env("ACP_SDK");
const AIRLOCK = env("AIRLOCK_BIN");
const REPO = env("REPO");
const HOME_DIR = env("HOME_DIR");
const STATE = env("STATE");
const MODEL_URL = env("MODEL_URL");
const CLIENT = { name: "acp-sdk-client", version: "2.4.0" };

const sdkPackage = JSON.parse(readFileSync(join(SDK, "package.json"), "utf8"));
const acp = await import(pathToFileURL(join(SDK, "dist/v1/stable/acp.js")).href);
const { methods } = acp;

let checks = 0;
function check(what, ok, detail = "") {
  if (!ok) {
    console.log(`FAIL ${what}${detail ? `: ${detail}` : ""}`);
    process.exit(1);
  }
  checks += 1;
  console.log(`ok   ${what}`);
}

const airlockEnv = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: HOME_DIR,
  XDG_CONFIG_HOME: join(HOME_DIR, ".config"),
  NO_COLOR: "1",
};

/** Starts `airlock acp`; returns the process and its ACP stream. */
function startAirlock() {
  const child = spawn(AIRLOCK, ["acp", "--endpoint", MODEL_URL, "--model", "scripted", "--dir", STATE], {
    cwd: HOME_DIR,
    env: airlockEnv,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), Readable.toWeb(child.stdout));
  return { child, exited, stream };
}

/** What the editor saw and how it answers questions. */
class Editor {
  constructor() {
    this.updates = [];
    this.asked = [];
    this.answers = [];
  }

  app() {
    return acp
      .client({ name: CLIENT.name })
      .onNotification(methods.client.session.update, ({ params }) => {
        this.updates.push(params.update);
      })
      .onRequest(methods.client.session.requestPermission, ({ params }) => {
        this.asked.push(params);
        const kind = this.answers.shift();
        if (!kind) return { outcome: { outcome: "cancelled" } };
        const option = params.options.find((o) => o.kind === kind);
        if (!option) return { outcome: { outcome: "cancelled" } };
        return { outcome: { outcome: "selected", optionId: option.optionId } };
      });
  }

  async waitFor(what, test, ms = 60000) {
    const start = Date.now();
    while (!test()) {
      if (Date.now() - start > ms) throw new Error(`waited ${ms} ms for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const text = (block) => (block && block.type === "text" ? block.text : "");
const agentText = (updates) =>
  updates.filter((u) => u.sessionUpdate === "agent_message_chunk").map((u) => text(u.content)).join("");

// --- the first airlock acp: a new session -----------------------------------
const first = startAirlock();
const editor = new Editor();
let sessionId;
await editor.app().connectWith(first.stream, async (cx) => {
  const init = await cx.request(methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: {},
    clientInfo: CLIENT,
  });
  check("initialize: protocol version 1, agent airlock", init.protocolVersion === 1 && init.agentInfo?.name === "airlock",
    JSON.stringify(init));
  check("initialize: loadSession advertised", init.agentCapabilities?.loadSession === true, JSON.stringify(init));

  const created = await cx.request(methods.agent.session.new, { cwd: REPO, mcpServers: [] });
  sessionId = created.sessionId;
  check("session/new answers a session id", typeof sessionId === "string" && sessionId.length > 0, JSON.stringify(created));
  const modeIds = (created.modes?.availableModes ?? []).map((m) => m.id);
  check("session/new: the modes policy allows, ask current",
    created.modes?.currentModeId === "ask" && ["ask", "edits", "plan", "auto"].every((m) => modeIds.includes(m)),
    JSON.stringify(created.modes));

  // 1. An edit, asked with its diff, allowed once.
  editor.answers.push("allow_once");
  const done = await cx.request(methods.agent.session.prompt, {
    sessionId,
    prompt: [{ type: "text", text: "make a.txt say hello world" }],
  });
  check("prompt 1 ends its turn", done.stopReason === "end_turn", JSON.stringify(done));
  check("one permission request", editor.asked.length === 1, JSON.stringify(editor.asked));
  const diff = (editor.asked[0]?.toolCall?.content ?? []).find((c) => c.type === "diff");
  check("the request carries the diff of a.txt",
    diff && diff.path === join(REPO, "a.txt") && diff.oldText === "hello\n" && diff.newText === "hello world\n",
    JSON.stringify(editor.asked[0]?.toolCall));
  check("the request offers allow once and reject",
    ["allow_once", "reject_once"].every((k) => editor.asked[0].options.some((o) => o.kind === k)),
    JSON.stringify(editor.asked[0].options));
  check("a.txt changed", readFileSync(join(REPO, "a.txt"), "utf8") === "hello world\n");
  const editId = editor.asked[0].toolCall.toolCallId;
  const statuses = editor.updates
    .filter((u) => u.sessionUpdate === "tool_call_update" && u.toolCallId === editId && u.status)
    .map((u) => u.status);
  check("the edit's call completed", statuses.at(-1) === "completed", JSON.stringify(statuses));
  check("the answer streamed", agentText(editor.updates).includes("Edited."), agentText(editor.updates));

  // 2. A turn cancelled while its answer streams.
  const before = editor.updates.length;
  const slow = cx.request(methods.agent.session.prompt, {
    sessionId,
    prompt: [{ type: "text", text: "write something long" }],
  });
  await editor.waitFor("the slow answer's first words",
    () => editor.updates.slice(before).some((u) => u.sessionUpdate === "agent_message_chunk"));
  await cx.notify(methods.agent.session.cancel, { sessionId });
  const cancelled = await slow;
  check("session/cancel: the turn answers cancelled", cancelled.stopReason === "cancelled", JSON.stringify(cancelled));
  check("the cancelled answer was cut short", !agentText(editor.updates).includes("never finished"));

  // 3. Plan mode: an edit is refused without a question.
  await cx.request(methods.agent.session.setMode, { sessionId, modeId: "plan" });
  await editor.waitFor("the mode update", () =>
    editor.updates.some((u) => u.sessionUpdate === "current_mode_update" && u.currentModeId === "plan"));
  check("session/set_mode plan: current_mode_update plan", true);
  const askedBefore = editor.asked.length;
  const planned = await cx.request(methods.agent.session.prompt, {
    sessionId,
    prompt: [{ type: "text", text: "create b.txt" }],
  });
  check("prompt 3 ends its turn", planned.stopReason === "end_turn", JSON.stringify(planned));
  check("plan mode asks nothing", editor.asked.length === askedBefore, JSON.stringify(editor.asked.slice(askedBefore)));
  check("plan mode wrote nothing", !existsSync(join(REPO, "b.txt")));
  const refused = editor.updates.filter((u) => u.sessionUpdate === "tool_call_update" && u.status === "failed")
    .map((u) => JSON.stringify(u.content ?? []));
  check("the edit's call failed, denied by mode:plan", refused.some((c) => c.includes("mode:plan")), refused.join("\n"));
  let unknown;
  try {
    await cx.request(methods.agent.session.setMode, { sessionId, modeId: "yolo" });
  } catch (e) {
    unknown = e;
  }
  check("session/set_mode of an unknown mode is refused", unknown !== undefined);
});
first.child.stdin.end();
const firstExit = await first.exited;
check("airlock acp exits 0 when the editor hangs up", firstExit.code === 0, JSON.stringify(firstExit));

// --- a second airlock acp: session/load -------------------------------------
const second = startAirlock();
const later = new Editor();
await later.app().connectWith(second.stream, async (cx) => {
  await cx.request(methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: {},
    clientInfo: CLIENT,
  });
  const loaded = await cx.request(methods.agent.session.load, { sessionId, cwd: REPO, mcpServers: [] });
  check("session/load answers with the modes", loaded.modes?.currentModeId !== undefined, JSON.stringify(loaded));
  const users = later.updates.filter((u) => u.sessionUpdate === "user_message_chunk").map((u) => text(u.content));
  check("the replay has the person's messages", users.includes("make a.txt say hello world"), JSON.stringify(users));
  check("the replay has the model's messages", agentText(later.updates).includes("Edited."), agentText(later.updates));
  const edit = later.updates.find((u) => u.sessionUpdate === "tool_call" && u.kind === "edit" && u.status === "completed");
  check("the replay has the edit, completed, with its diff",
    edit && (edit.content ?? []).some((c) => c.type === "diff" && c.newText === "hello world"),
    JSON.stringify(later.updates.filter((u) => u.sessionUpdate === "tool_call")));
  const next = await cx.request(methods.agent.session.prompt, {
    sessionId,
    prompt: [{ type: "text", text: "and now?" }],
  });
  check("the loaded session goes on", next.stopReason === "end_turn" && agentText(later.updates).includes("Continuing."),
    agentText(later.updates));
});
second.child.stdin.end();
const secondExit = await second.exited;
check("the second airlock acp exits 0", secondExit.code === 0, JSON.stringify(secondExit));

// --- the record -------------------------------------------------------------
const audit = (...args) => {
  const r = spawnSync(AIRLOCK, ["audit", ...args, "--dir", STATE], { env: airlockEnv, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`airlock audit ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const entries = audit("show", "--json").trim().split("\n").map((l) => JSON.parse(l));
const approvals = entries
  .filter((e) => e.kind === "tool_call" && e.payload.approval)
  .map((e) => e.payload);
const editor_name = `editor:${CLIENT.name} ${CLIENT.version}`;
check(`the edit's approval names ${editor_name} at acp`,
  approvals.length === 1 && approvals[0].name === "edit_file" && approvals[0].approval.answer === "once" &&
    approvals[0].approval.person === editor_name && approvals[0].approval.terminal === "acp",
  JSON.stringify(approvals));
check("two session ends on the record",
  entries.filter((e) => e.kind === "session_end" && e.session === sessionId).length === 2,
  JSON.stringify(entries.filter((e) => e.kind === "session_end")));
const verify = audit("verify");
check("airlock audit verify", verify.startsWith("ok"), verify);
console.log(`${checks} passed (${sdkPackage.name} ${sdkPackage.version})`);
