/// The topology page the controller serves at `/`: one HTML document with its style and
/// script inline, no external asset, no build step (see docs/web-page.md).
///
/// The script polls the JSON API of the controller that served it, every second, with
/// relative URLs (`api/v1/...`), and renders each section as a tree of its instances, the
/// drift findings, the running operation's steps and the recent operations. Every value from
/// the API reaches the DOM through `textContent` or an attribute, never as markup.
///
/// Read-only until a DBA gives the API's access token (kept in the tab's `sessionStorage`
/// only): then each section offers a switchover and each pooled replica a depool, staged and
/// committed after a confirmation that shows `GET /api/v1/config/diff`.
///
/// Stable hooks for tests and scripts: `data-section` on each section, `data-instance` (with
/// `data-configured-role`, `data-observed-role`, `data-health`, and the class `lagging`) on
/// each instance row, `data-operation` and `data-state` on operations and their steps
/// (`li.step[data-step]`), `#recent-operations` for the recent operations, `body[data-loaded]`
/// once the first poll has rendered.
public enum WebPage {
    /// Heartbeat lag, in seconds, above which a replica is shown as lagging.
    public static let lagThreshold = 5

    public static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Marina topology</title>
        <style>
        :root {
          --bg: #f4f5f7; --fg: #1c2230; --muted: #667085; --line: #d8dce3; --card: #fff; --head: #1c2230;
          --ok: #1a7f37; --ok-bg: #e6f4ea; --warn: #8a5a00; --warn-bg: #fff4d6; --bad: #c62828; --bad-bg: #fde8e8;
          --info: #0b5cad; --info-bg: #e3eefb;
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 13px/1.35 system-ui, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
        .mono, code, td.num, .step-time { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
        header { position: sticky; top: 0; z-index: 2; display: flex; align-items: center; gap: 18px; padding: 7px 16px;
          background: var(--head); color: #fff; }
        header h1 { margin: 0; font-size: 16px; letter-spacing: .5px; }
        header .who { display: flex; gap: 14px; align-items: baseline; }
        header .label { color: #a9b1c2; margin-right: 4px; }
        header .spacer { flex: 1; }
        header input[type="text"], header input[type="password"] { width: 170px; padding: 3px 6px; border-radius: 3px;
          border: 1px solid #596075; background: #2b3244; color: #fff; }
        header button { background: #39415a; color: #fff; border: 1px solid #596075; }
        #updated.stale { color: #ffb4b4; font-weight: 600; }
        .badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; line-height: 17px;
          white-space: nowrap; }
        .badge.ok { background: var(--ok-bg); color: var(--ok); }
        .badge.warn, .badge.warning { background: var(--warn-bg); color: var(--warn); }
        .badge.bad, .badge.error, .badge.critical { background: var(--bad-bg); color: var(--bad); }
        .badge.info, .badge.information { background: var(--info-bg); color: var(--info); }
        .badge.muted { background: #eceef2; color: var(--muted); }
        main { padding: 10px 16px 40px; max-width: 1600px; }
        #message { margin: 0 0 10px; padding: 6px 10px; border-radius: 4px; white-space: pre-wrap; }
        #message:empty { display: none; }
        #message.ok { background: var(--ok-bg); color: var(--ok); }
        #message.error { background: var(--bad-bg); color: var(--bad); }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 5px; margin-bottom: 12px; }
        .card > .title { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; padding: 6px 10px; border-bottom: 1px solid var(--line); }
        .card > .title h2 { margin: 0; font-size: 15px; }
        .card > .title .facts { color: var(--muted); }
        .card .body { padding: 0 0 4px; }
        .card h3 { margin: 8px 10px 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .4px; color: var(--muted); }
        table { border-collapse: collapse; width: 100%; }
        th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .3px;
          padding: 4px 6px; border-bottom: 1px solid var(--line); background: #fafbfc; white-space: nowrap; }
        td { padding: 3px 6px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
        tr:last-child > td { border-bottom: none; }
        td.num { text-align: right; white-space: nowrap; }
        td.name { white-space: nowrap; font-weight: 600; }
        .tree { color: #9aa3b5; font-weight: 400; white-space: pre; }
        .muted { color: var(--muted); }
        .nowrap { white-space: nowrap; }
        td.gtid { overflow-wrap: anywhere; min-width: 90px; max-width: 180px; font-size: 11px; }
        .tags { display: flex; flex-wrap: wrap; gap: 3px; }
        .tags .badge { white-space: normal; }
        tr.instance.primary td.name { color: #0b3d91; }
        tr.instance.lagging { background: var(--warn-bg); }
        tr.instance.lagging td.health { color: var(--warn); font-weight: 700; }
        tr.instance.down { background: var(--bad-bg); }
        tr.instance.down td.health { color: var(--bad); font-weight: 700; }
        tr.instance.drift td.name { box-shadow: inset 3px 0 0 var(--bad); }
        tr.instance.drift.drift-warning td.name { box-shadow: inset 3px 0 0 #d9a400; }
        tr.instance.drift.drift-information td.name { box-shadow: inset 3px 0 0 var(--info); }
        .mismatch { color: var(--bad); font-weight: 700; }
        .stale-age { color: var(--bad); font-weight: 700; }
        .drift-list td { font-size: 12px; }
        .operation { margin: 6px 10px 8px; border: 1px solid #b9cbe8; border-radius: 4px; background: #f7faff; }
        .operation > .op-title { padding: 5px 8px; border-bottom: 1px solid #d7e2f3; display: flex; flex-wrap: wrap; gap: 10px;
          align-items: center; }
        .operation > .op-title strong { font-size: 13px; }
        .operation .op-facts { padding: 4px 8px; color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 16px; }
        .operation .op-problem { padding: 4px 8px; color: var(--bad); white-space: pre-wrap; }
        ol.steps { list-style: none; margin: 0; padding: 4px 0; counter-reset: step; }
        li.step { display: grid; grid-template-columns: 34px 100px minmax(260px, 1fr) 110px minmax(120px, 1.2fr); gap: 8px;
          padding: 2px 8px; align-items: baseline; counter-increment: step; }
        li.step::before { content: counter(step) "."; color: var(--muted); text-align: right; }
        li.step .step-state { font-weight: 700; text-transform: uppercase; font-size: 11px; }
        li.step[data-state="done"] .step-state { color: var(--ok); }
        li.step[data-state="running"] { background: #fff7d6; }
        li.step[data-state="running"] .step-state { color: var(--warn); }
        li.step[data-state="pending"] { color: var(--muted); }
        li.step[data-state="failed"], li.step[data-state="undo-failed"] { background: var(--bad-bg); }
        li.step[data-state="failed"] .step-state, li.step[data-state="undo-failed"] .step-state { color: var(--bad); }
        li.step[data-state="undone"] .step-state, li.step[data-state="undoing"] .step-state { color: var(--info); }
        li.step.paused { outline: 2px dashed #d9a400; outline-offset: -2px; }
        li.step .step-time { text-align: right; }
        li.step .step-error { grid-column: 3 / -1; color: var(--bad); white-space: pre-wrap; }
        li.pnr-line { display: block; margin: 3px 8px; border-top: 2px solid var(--bad); color: var(--bad); font-size: 10px; font-weight: 700;
          text-transform: uppercase; letter-spacing: .5px; padding-top: 1px; }
        tr.op-row { cursor: pointer; }
        tr.op-row:hover { background: #f2f5fa; }
        tr.op-row.selected { background: var(--info-bg); }
        .state-done { color: var(--ok); font-weight: 600; }
        .state-running, .state-rolling-back, .state-requested { color: var(--warn); font-weight: 600; }
        .state-rolled-back, .state-refused { color: var(--info); font-weight: 600; }
        .state-needs-human, .state-done-needs-attention { color: var(--bad); font-weight: 700; }
        button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid #b8bfcc; border-radius: 3px; background: #f6f7f9;
          cursor: pointer; }
        button:hover { background: #e9ecf1; }
        button.danger { border-color: #d99; color: var(--bad); }
        select, input[type="text"] { font: inherit; font-size: 12px; padding: 2px 4px; border: 1px solid #b8bfcc; border-radius: 3px; }
        .action { display: none; }
        body.armed .action { display: inline-flex; gap: 6px; align-items: center; }
        body.armed td .action { display: inline-block; }
        .title .action { margin-left: auto; }
        #staged { display: none; margin-bottom: 12px; padding: 6px 10px; background: var(--warn-bg); border: 1px solid #ecd48a;
          border-radius: 5px; }
        #staged.shown { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
        #staged ul { margin: 0; padding-left: 18px; }
        .empty { padding: 6px 10px; color: var(--muted); }
        </style>
        </head>
        <body>
        <header>
          <h1>Marina</h1>
          <div class="who">
            <span><span class="label">controller</span><span id="controller-id" class="mono">…</span></span>
            <span><span class="label">leader</span><span id="leader" class="mono">…</span></span>
            <span id="leads"></span>
          </div>
          <span class="spacer"></span>
          <span id="updated">loading…</span>
          <form id="token-form" autocomplete="off">
            <input id="author" type="text" placeholder="your name (optional)" aria-label="your name, for the journal">
            <input id="token" type="password" placeholder="API token (enables actions)" aria-label="API access token">
            <button id="token-use" type="submit">Use</button>
            <button id="token-forget" type="button">Forget</button>
          </form>
        </header>
        <main>
          <div id="message" role="status"></div>
          <div id="staged">
            <strong>Staged, not committed:</strong>
            <ul id="staged-changes"></ul>
            <span class="action">
              <input id="commit-message" type="text" size="40" placeholder="why (commit message)">
              <button id="commit" type="button" class="danger">Review and commit…</button>
            </span>
          </div>
          <div id="sections"></div>
          <div id="site-drift"></div>
          <div class="card" id="recent">
            <div class="title"><h2>Recent operations</h2><span class="facts">click one for its steps</span></div>
            <div class="body">
              <table id="recent-operations">
                <thead><tr><th>Operation</th><th>Kind</th><th>Section</th><th>Change</th><th>State</th><th>Requested by</th>
                  <th>Requested</th><th>Took</th><th>Write window</th></tr></thead>
                <tbody></tbody>
              </table>
            </div>
          </div>
          <div id="operation-detail"></div>
        </main>
        <script>
        "use strict";
        const LAG_THRESHOLD = \#(lagThreshold);
        const POLL_MS = 1000;
        // An agent republishes an unchanged observation every 10 s: three missed is stale.
        const STALE_AGE = 30;
        const TOKEN_KEY = "marina.api-token";
        const AUTHOR_KEY = "marina.author";
        const model = {
          controller: null, status: [], drift: [], operations: [], running: {}, selected: null, detail: null,
          staged: false, problems: [], lastOK: null, loaded: false, following: null,
        };
        const cards = new Map();
        const FINISHED = ["planned", "refused", "done", "done-needs-attention", "rolled-back", "needs-human"];

        // Builds an element; strings become text nodes, never markup.
        function h(tag, attributes, ...children) {
          const element = document.createElement(tag);
          for (const [key, value] of Object.entries(attributes || {})) {
            if (value === null || value === undefined || value === false) continue;
            if (key === "class") element.className = value;
            else if (key === "title") element.title = String(value);
            else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
            else element.setAttribute(key, value === true ? "" : String(value));
          }
          for (const child of children.flat()) {
            if (child === null || child === undefined || child === false) continue;
            element.append(child instanceof Node ? child : String(child));
          }
          return element;
        }
        function field(object, ...names) {
          for (const name of names) if (object && object[name] !== undefined && object[name] !== null) return object[name];
          return undefined;
        }
        // Replaces an element's children, skipping the absent ones.
        function fill(element, ...children) {
          element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false)
            .map((child) => child instanceof Node ? child : String(child)));
          return element;
        }
        function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
        // Who acts, for the journal and the history (the API's default names the controller).
        function withAuthor(body) {
          const author = sessionStorage.getItem(AUTHOR_KEY) || "";
          return author ? Object.assign({ author }, body) : body;
        }

        async function api(method, path, body) {
          const headers = { "Accept": "application/json" };
          if (token()) headers["Authorization"] = "Bearer " + token();
          if (body !== undefined) headers["Content-Type"] = "application/json";
          const response = await fetch(path, {
            method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
          });
          const text = await response.text();
          let data = text;
          try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: keep the text */ }
          if (!response.ok) {
            const error = data && typeof data === "object" && data.error ? data.error : null;
            let message = error && error.message ? error.message
              : (typeof data === "string" && data.trim() ? data.trim() : "HTTP " + response.status);
            for (const issue of (error && Array.isArray(error.issues) ? error.issues : [])) {
              message += "\n" + (issue.path ? issue.path + ": " : "") + (issue.message || JSON.stringify(issue));
            }
            const failure = new Error(message);
            failure.code = error ? error.code : undefined;
            throw failure;
          }
          return data;
        }

        // Formatting.
        function ms(value) {
          if (typeof value !== "number" || !isFinite(value)) return "";
          if (value < 10) return value.toFixed(2) + " ms";
          if (value < 1000) return value.toFixed(1) + " ms";
          return seconds(value / 1000);
        }
        function seconds(value) {
          if (typeof value !== "number" || !isFinite(value)) return "";
          if (value < 10) return value.toFixed(2) + " s";
          if (value < 120) return value.toFixed(1) + " s";
          if (value < 7200) return Math.round(value / 60) + " min";
          return (value / 3600).toFixed(1) + " h";
        }
        function date(text) { const value = text ? new Date(text) : null; return value && !isNaN(value) ? value : null; }
        function ago(text) {
          const value = date(text);
          if (!value) return "";
          const delta = (Date.now() - value.getTime()) / 1000;
          if (delta < 0) return value.toLocaleTimeString();
          if (delta < 120) return Math.round(delta) + " s ago";
          if (delta < 7200) return Math.round(delta / 60) + " min ago";
          if (delta < 172800) return Math.round(delta / 3600) + " h ago";
          return value.toISOString().slice(0, 16).replace("T", " ");
        }
        function cls(text) { return String(text || "").toLowerCase().replace(/[^a-z0-9-]+/g, "-"); }
        function say(text, kind) {
          const box = document.getElementById("message");
          box.textContent = text;
          box.className = kind || "";
        }

        // How a member is doing: ok, lagging (heartbeat lag over the threshold), stopped
        // (a replication thread not running), down (unreachable or not observed).
        function health(member) {
          if (member.reachable === undefined || member.reachable === null) return { state: "down", label: "no observation" };
          if (member.reachable === false) return { state: "down", label: "unreachable" };
          const replica = member.source !== undefined && member.source !== null;
          if (replica && (member.ioThread !== "Yes" || member.sqlThread !== "Yes")) {
            return { state: "stopped", label: "replication stopped" };
          }
          if (replica && typeof member.heartbeatLag === "number" && member.heartbeatLag > LAG_THRESHOLD) {
            return { state: "lagging", label: "lagging" };
          }
          if (member.configuredRole === "replica" && !replica) return { state: "stopped", label: "no replication" };
          return { state: "ok", label: "ok" };
        }

        // Members in the order `marina status` prints them: each replica under its source.
        function tree(members) {
          const names = new Set(members.map((member) => member.name));
          const placed = new Set();
          const rows = [];
          function add(member, depth) {
            if (placed.has(member.name)) return;
            placed.add(member.name);
            rows.push({ member, depth });
            for (const child of members) {
              if (child.source === member.name && child.name !== member.name && depth < 8) add(child, depth + 1);
            }
          }
          for (const member of members) if (!member.source || !names.has(member.source)) add(member, 0);
          for (const member of members) add(member, 0);
          return rows;
        }

        function severityRank(severity) { return ({ critical: 0, error: 1, warning: 2 })[severity] ?? 3; }

        function renderHeader() {
          const controller = model.controller;
          document.getElementById("controller-id").textContent = controller ? controller.id : "?";
          // The leader: its id, or an object with the id and since when it leads.
          const leader = controller && controller.leader && typeof controller.leader === "object" ? controller.leader : null;
          const leaderID = leader ? leader.id : controller ? controller.leader : null;
          const leaderElement = document.getElementById("leader");
          leaderElement.textContent = controller ? (leaderID || "none") : "?";
          leaderElement.title = leader && leader.since ? "leads since " + leader.since : "";
          const leads = document.getElementById("leads");
          leads.replaceChildren(controller
            ? h("span", { class: "badge " + (controller.leads ? "ok" : leaderID ? "muted" : "bad") },
              controller.leads ? "this controller leads" : leaderID ? "standby" : "no leader")
            : "");
          const updated = document.getElementById("updated");
          if (model.problems.length) {
            updated.textContent = model.problems.join("; ") + (model.lastOK ? " (last good " + model.lastOK.toLocaleTimeString() + ")" : "");
            updated.className = "stale";
          } else {
            updated.textContent = model.lastOK ? "updated " + model.lastOK.toLocaleTimeString() : "loading…";
            updated.className = "";
          }
          document.body.classList.toggle("armed", token() !== "");
        }

        function sectionCard(name) {
          if (cards.has(name)) return cards.get(name);
          const select = h("select", { class: "candidate", "aria-label": "candidate" });
          const reason = h("input", { type: "text", class: "reason", size: 28, placeholder: "reason" });
          const button = h("button", { type: "button", class: "danger switchover" }, "Switch over…");
          const title = h("div", { class: "title" });
          const actions = h("span", { class: "action" }, "new primary", select, reason, button);
          const body = h("div", { class: "body" });
          const root = h("div", { class: "card section", "data-section": name }, title, body);
          const card = { root, title, actions, body, select, reason };
          button.addEventListener("click", () => switchover(name, card));
          cards.set(name, card);
          return card;
        }

        function renderSections() {
          const container = document.getElementById("sections");
          const wanted = model.status.map((section) => section.name);
          for (const name of [...cards.keys()]) if (!wanted.includes(name)) cards.delete(name);
          if (!model.status.length) {
            container.replaceChildren(h("div", { class: "card empty" }, model.loaded ? "No section is committed." : "Loading…"));
            return;
          }
          container.replaceChildren(...model.status.map((section) => renderSection(section)));
        }

        function renderSection(section) {
          const card = sectionCard(section.name);
          const findings = model.drift.filter((finding) => finding.section === section.name);
          const counts = {};
          for (const finding of findings) counts[finding.severity] = (counts[finding.severity] || 0) + 1;
          const operation = model.running[section.name];
          fill(card.title,
            h("h2", {}, section.name),
            h("span", { class: "facts" }, section.datacenter + " · primary " + (section.primary || "none")),
            h("span", { class: "badge " + (section.readOnly ? "bad" : "ok"), "data-read-only": section.readOnly },
              section.readOnly ? "READ-ONLY" : "read-write"),
            section.operation ? h("span", { class: "badge warn" }, "operation " + section.operation + " running") : null,
            Object.keys(counts).sort((a, b) => severityRank(a) - severityRank(b))
              .map((severity) => h("span", { class: "badge " + cls(severity) }, counts[severity] + " " + severity)),
            card.actions);
          // The candidates: every replica; keep the DBA's choice across polls.
          const candidates = section.members.filter((member) => member.name !== section.primary).map((member) => member.name);
          const current = card.select.value;
          const options = [...card.select.options].map((option) => option.value);
          if (options.join(",") !== candidates.join(",")) {
            card.select.replaceChildren(...candidates.map((name) => h("option", { value: name }, name)));
            if (candidates.includes(current)) card.select.value = current;
          }
          const byInstance = {};
          for (const finding of findings) if (finding.instance) (byInstance[finding.instance] ||= []).push(finding);
          const rows = tree(section.members).map(({ member, depth }) => instanceRow(section, member, depth, byInstance[member.name] || []));
          const parts = [
            h("table", { class: "instances" },
              h("thead", {}, h("tr", {}, ["Instance", "Configured", "Observed", "Health", "read_only", "Replication", "Lag", "Pooled",
                "Marks", "Drift", "GTID", "Age", ""].map((label) => h("th", {}, label)))),
              h("tbody", {}, rows)),
          ];
          if (section.operation) parts.push(operationPanel(operation, section.operation, "operation-" + section.name));
          if (findings.length) parts.push(h("h3", {}, "Drift"), driftTable(findings, false));
          if (section.uncommitted && section.uncommitted.length) {
            parts.push(h("h3", {}, "Staged, not committed"), h("ul", { class: "uncommitted" }, section.uncommitted.map((line) => h("li", {}, line))));
          }
          card.body.replaceChildren(...parts);
          return card.root;
        }

        function instanceRow(section, member, depth, findings) {
          const state = health(member);
          const classes = ["instance", member.configuredRole === "primary" ? "primary" : "replica"];
          if (state.state === "lagging" || state.state === "stopped") classes.push("lagging");
          if (state.state === "down") classes.push("down");
          if (findings.length) {
            classes.push("drift");
            const worst = findings.map((finding) => finding.severity).sort((a, b) => severityRank(a) - severityRank(b))[0];
            classes.push("drift-" + cls(worst));
          }
          const mismatch = member.reachable === true && member.observedRole !== member.configuredRole;
          const replication = member.source
            ? [h("span", {}, "from " + member.source + " "),
              h("span", { class: member.ioThread === "Yes" ? "muted" : "mismatch" }, "io " + (member.ioThread || "?")),
              " ", h("span", { class: member.sqlThread === "Yes" ? "muted" : "mismatch" }, "sql " + (member.sqlThread || "?"))]
            : [h("span", { class: "muted" }, "no source")];
          const marks = [];
          if (member.automatic) marks.push(h("span", { class: "badge warn mark-automatic", title: member.automatic }, member.automatic));
          if (member.selfFenced) {
            marks.push(h("span", { class: "badge bad mark-self-fenced", title: member.selfFenced }, "self-fenced " + member.selfFenced));
          }
          if (member.needsRejoin) {
            marks.push(h("span", { class: "badge bad mark-needs-rejoin", title: member.needsRejoin }, "needs rejoin: " + member.needsRejoin));
          }
          if (member.pendingRestart) marks.push(h("span", { class: "badge info" }, "pending restart: " + member.pendingRestart.join(", ")));
          if (member.optionFileError) marks.push(h("span", { class: "badge bad" }, "option file: " + member.optionFileError));
          if (member.replicationError) marks.push(h("span", { class: "badge bad" }, "replication error: " + member.replicationError));
          if (member.error) marks.push(h("span", { class: "badge bad" }, "probe error: " + member.error));
          const pooled = member.pooled === undefined ? ""
            : member.pooled ? "pooled " + (member.percentage ?? 100) + "%" : "DEPOOLED";
          const lag = typeof member.heartbeatLag === "number" ? seconds(member.heartbeatLag) : "";
          const age = typeof member.ageSeconds === "number" ? member.ageSeconds : null;
          const depool = member.configuredRole === "replica" && member.pooled
            ? h("span", { class: "action" },
              h("button", { type: "button", class: "depool", onclick: () => depool(section.name, member.name) }, "depool"))
            : null;
          return h("tr", {
            class: classes.join(" "), "data-instance": member.name, "data-configured-role": member.configuredRole,
            "data-observed-role": member.observedRole, "data-health": state.state, "data-source": member.source, "data-depth": depth,
          },
            h("td", { class: "name" }, h("span", { class: "tree" }, depth ? "   ".repeat(depth - 1) + " └─ " : ""), member.name),
            h("td", {}, member.configuredRole),
            h("td", { class: mismatch ? "mismatch" : "" }, member.observedRole + (mismatch ? " (!)" : "")),
            h("td", { class: "health nowrap" }, state.label),
            h("td", { class: member.readOnly === false && member.configuredRole !== "primary" ? "mismatch" : "" },
              member.readOnly === undefined ? "" : member.readOnly ? "ON" : "OFF"),
            h("td", { class: "nowrap" }, replication),
            h("td", { class: "num" + (state.state === "lagging" ? " mismatch" : "") }, lag),
            h("td", { class: "nowrap" + (member.pooled === false ? " mismatch" : "") }, pooled),
            h("td", {}, h("div", { class: "tags" }, marks)),
            h("td", {}, h("div", { class: "tags" }, findings.map((finding) => h("span", {
              class: "badge " + cls(finding.severity), "data-drift": finding.code,
              title: "expected " + finding.expected + "; observed " + finding.observed,
            }, finding.code)))),
            h("td", { class: "gtid mono muted", title: "gtid_current_pos" }, (member.gtidCurrentPos || "").split(",").join(",\u200b")),
            h("td", { class: "num" + (age !== null && age > STALE_AGE ? " stale-age" : "") }, age === null ? "" : seconds(age)),
            h("td", {}, depool));
        }

        function driftTable(findings, withSection) {
          const sorted = [...findings].sort((a, b) => severityRank(a.severity) - severityRank(b.severity));
          return h("table", { class: "drift-list" },
            h("thead", {}, h("tr", {}, (withSection ? ["Severity", "Section", "Instance", "Code", "Expected", "Observed"]
              : ["Severity", "Instance", "Code", "Expected", "Observed"]).map((label) => h("th", {}, label)))),
            h("tbody", {}, sorted.map((finding) => h("tr", { class: "finding", "data-drift": finding.code, "data-instance": finding.instance },
              h("td", {}, h("span", { class: "badge " + cls(finding.severity) }, finding.severity)),
              withSection ? h("td", {}, finding.section || "-") : null,
              h("td", {}, finding.instance || "-"),
              h("td", { class: "mono" }, finding.code),
              h("td", {}, finding.expected),
              h("td", {}, finding.observed)))));
        }

        function change(record) {
          const candidate = record.candidate || "?";
          switch (record.kind) {
            case "rejoin": return candidate + " rejoins";
            case "move": return candidate + " → under " + (field(record, "new_source", "newSource") || "?");
            case "grant-sync": case "variable-sync": return (record.steps || []).length + " steps";
            default: return (field(record, "old_primary", "oldPrimary") || "?") + " → " + candidate;
          }
        }

        function took(record) {
          const started = date(field(record, "started_at", "startedAt") || field(record, "requested_at", "requestedAt"));
          const finished = date(field(record, "finished_at", "finishedAt"));
          if (!started) return "";
          const end = finished || (record.state === "running" || record.state === "rolling-back" ? new Date() : null);
          return end ? ms(end.getTime() - started.getTime()) + (finished ? "" : " so far") : "";
        }

        // An operation and its steps, live: the point of no return marked, the running step highlighted.
        function operationPanel(record, id, elementID) {
          if (!record || record.error) {
            return h("div", { class: "operation", id: elementID, "data-operation": id },
              h("div", { class: "op-title" }, h("strong", {}, "operation " + id),
                record && record.error ? h("span", { class: "mismatch" }, record.error) : "loading…"));
          }
          const paused = field(record, "paused_before", "pausedBefore");
          const writeWindow = field(record, "window_milliseconds", "windowMilliseconds");
          const facts = [
            "requested by " + (field(record, "requested_by", "requestedBy") || "?") + " " + ago(field(record, "requested_at", "requestedAt")),
            record.reason ? "reason: " + record.reason : "no reason given",
            record.controller ? "controller " + record.controller : null,
            took(record) ? "took " + took(record) : null,
            typeof writeWindow === "number" ? "write window " + ms(writeWindow) : null,
            paused ? "paused before " + paused + " (test hook)" : null,
          ].filter(Boolean);
          const steps = record.steps || [];
          const items = [];
          steps.forEach((step, index) => {
            const noReturn = field(step, "point_of_no_return", "pointOfNoReturn") === true;
            if (noReturn) items.push(h("li", { class: "pnr-line", "aria-hidden": "true" }, "point of no return"));
            const started = date(field(step, "started_at", "startedAt"));
            const time = typeof step.milliseconds === "number" ? ms(step.milliseconds)
              : step.state === "running" && started ? ms(Date.now() - started.getTime()) + "…" : "";
            const error = [step.error ? "error" + (step.host ? " on " + step.host : "") + ": " + step.error : null,
              field(step, "undo_error", "undoError") ? "undo failed: " + field(step, "undo_error", "undoError") : null].filter(Boolean);
            const undo = field(step, "undo_milliseconds", "undoMilliseconds");
            items.push(h("li", {
              class: "step" + (noReturn ? " pnr" : "") + (paused && paused === step.name ? " paused" : ""),
              "data-step": step.name, "data-state": step.state, "data-index": index, "data-point-of-no-return": noReturn ? "true" : null,
            },
              h("span", { class: "step-state" }, step.state),
              h("span", { class: "step-name" }, step.name,
                noReturn ? h("span", { class: "badge bad", style: "margin-left:6px" }, "point of no return") : null),
              h("span", { class: "step-time" }, time + (typeof undo === "number" ? " (undo " + ms(undo) + ")" : "")),
              h("span", { class: "muted" }, (step.hosts || []).join(", ")),
              error.length ? h("span", { class: "step-error" }, error.join("\n")) : null));
          });
          const problems = [];
          if (record.failure) problems.push("failed at " + record.failure.step + " on " + record.failure.host + ": " + record.failure.error);
          for (const refusal of record.refusals || []) problems.push("refused: " + refusal);
          for (const host of record.attention || []) problems.push("needs attention: " + host);
          return h("div", { class: "operation", id: elementID, "data-operation": record.id, "data-state": record.state },
            h("div", { class: "op-title" },
              h("strong", {}, record.kind + " of " + record.section + ": " + change(record)),
              h("span", { class: "state-" + cls(record.state) }, record.state),
              h("span", { class: "muted mono" }, record.id)),
            h("div", { class: "op-facts" }, facts.map((fact) => h("span", {}, fact))),
            problems.length ? h("div", { class: "op-problem" }, problems.join("\n")) : null,
            steps.length ? h("ol", { class: "steps" }, items) : h("div", { class: "empty" }, "no steps planned yet"));
        }

        function renderSiteDrift() {
          const findings = model.drift.filter((finding) => !finding.section || !model.status.some((section) => section.name === finding.section));
          const container = document.getElementById("site-drift");
          container.replaceChildren(findings.length
            ? h("div", { class: "card" }, h("div", { class: "title" }, h("h2", {}, "Site-wide drift")),
              h("div", { class: "body" }, driftTable(findings, true)))
            : "");
        }

        function renderOperations() {
          const body = document.querySelector("#recent-operations tbody");
          if (!model.operations.length) {
            body.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No operations yet.")));
          } else {
            body.replaceChildren(...model.operations.map((record) => {
              const writeWindow = field(record, "window_milliseconds", "windowMilliseconds");
              return h("tr", {
                class: "op-row" + (model.selected === record.id ? " selected" : ""), "data-operation": record.id, "data-state": record.state,
                onclick: () => select(record.id),
              },
                h("td", { class: "mono" }, record.id),
                h("td", {}, record.kind + (field(record, "dry_run", "dryRun") ? " (dry run)" : "")),
                h("td", {}, record.section),
                h("td", {}, change(record)),
                h("td", { class: "state state-" + cls(record.state) }, record.state),
                h("td", {}, field(record, "requested_by", "requestedBy") || ""),
                h("td", { title: field(record, "requested_at", "requestedAt") || "" }, ago(field(record, "requested_at", "requestedAt"))),
                h("td", { class: "num" }, took(record)),
                h("td", { class: "num window", "data-window-ms": typeof writeWindow === "number" ? writeWindow : null },
                  typeof writeWindow === "number" ? ms(writeWindow) : ""));
            }));
          }
          const detail = document.getElementById("operation-detail");
          detail.replaceChildren(model.selected
            ? h("div", { class: "card" },
              h("div", { class: "title" }, h("h2", {}, "Operation " + model.selected),
                h("button", { type: "button", onclick: () => select(null) }, "close")),
              h("div", { class: "body" }, operationPanel(model.detail, model.selected, "operation-detail-record")))
            : "");
        }

        function renderStaged() {
          const lines = [];
          for (const section of model.status) for (const line of section.uncommitted || []) lines.push(section.name + ": " + line);
          const shown = lines.length > 0 || model.staged;
          document.getElementById("staged").classList.toggle("shown", shown);
          document.getElementById("staged-changes").replaceChildren(
            ...(lines.length ? lines : ["staged changes (see the diff)"]).map((line) => h("li", {}, line)));
        }

        function render() {
          renderHeader();
          renderSections();
          renderSiteDrift();
          renderOperations();
          renderStaged();
          if (model.loaded) document.body.setAttribute("data-loaded", "true");
        }

        async function poll() {
          const names = ["controller", "status", "drift", "operations"];
          const results = await Promise.allSettled([
            api("GET", "api/v1/controller"), api("GET", "api/v1/status"), api("GET", "api/v1/drift"), api("GET", "api/v1/operations?limit=10"),
          ]);
          const problems = [];
          results.forEach((result, index) => {
            if (result.status === "rejected") { problems.push(names[index] + ": " + result.reason.message); return; }
            const value = result.value;
            if (names[index] === "controller") model.controller = value;
            else if (!Array.isArray(value)) problems.push(names[index] + ": not a list");
            else model[names[index]] = value;
          });
          const running = {};
          await Promise.all(model.status.filter((section) => section.operation).map(async (section) => {
            try { running[section.name] = await api("GET", "api/v1/operations/" + encodeURIComponent(section.operation)); }
            catch (error) { running[section.name] = { error: error.message }; }
          }));
          model.running = running;
          if (model.selected) {
            try { model.detail = await api("GET", "api/v1/operations/" + encodeURIComponent(model.selected)); }
            catch (error) { model.detail = { error: error.message }; }
          }
          model.problems = problems;
          if (!problems.length) { model.lastOK = new Date(); model.loaded = true; }
          reportFollowed();
          render();
        }

        async function loop() {
          try { await poll(); } catch (error) { model.problems = [String(error && error.message || error)]; render(); }
          setTimeout(loop, POLL_MS);
        }

        // Once the operation the page asked for ends, says how: done, or why not.
        function reportFollowed() {
          const record = model.detail;
          if (!model.following || !record || record.id !== model.following || !FINISHED.includes(record.state)) return;
          const why = (record.refusals || []).concat(record.failure ? ["failed at " + record.failure.step + " on " + record.failure.host
            + ": " + record.failure.error] : [], (record.attention || []).map((host) => "needs attention: " + host));
          say(record.kind + " of " + record.section + " (" + change(record) + "): " + record.state + (why.length ? "\n" + why.join("\n") : ""),
            record.state === "done" || record.state === "planned" ? "ok" : "error");
          model.following = null;
        }

        async function select(id) {
          model.selected = id;
          model.detail = null;
          if (id) {
            try { model.detail = await api("GET", "api/v1/operations/" + encodeURIComponent(id)); }
            catch (error) { model.detail = { error: error.message }; }
          }
          renderOperations();
        }

        // Actions: only with the token; each says what will happen before it is sent.
        async function switchover(section, card) {
          const status = model.status.find((item) => item.name === section);
          const to = card.select.value;
          const reason = card.reason.value.trim();
          if (!to) { say("Choose the new primary of " + section + ".", "error"); return; }
          if (!reason) { say("Give a reason for the switchover of " + section + ": it goes into the journal.", "error"); return; }
          const from = status ? status.primary : "?";
          const text = "Switch over section " + section + ": " + to + " becomes the primary, " + from + " becomes a read-only replica of it.\n\n"
            + "The section takes no writes for a moment while the primary moves; the controller rolls back if any host fails "
            + "before the point of no return.\n\nReason: " + reason + "\n\nProceed?";
          if (!confirm(text)) return;
          try {
            const result = await api("POST", "api/v1/sections/" + encodeURIComponent(section) + "/switchover", withAuthor({ to, reason }));
            const id = result && (result.id || (result.operation && result.operation.id) || result.operation);
            say("Switchover of " + section + " to " + to + " requested" + (typeof id === "string" ? ": operation " + id : "") + ".", "ok");
            card.reason.value = "";
            if (typeof id === "string") { model.following = id; select(id); }
          } catch (error) {
            say("Switchover of " + section + " refused: " + error.message, "error");
          }
        }

        async function depool(section, instance) {
          if (!confirm("Stage a depool of " + instance + " in " + section + "?\n\nNothing changes until the staged change is committed; "
            + "then applications stop reading from " + instance + ".")) return;
          try {
            await api("POST", "api/v1/instances/" + encodeURIComponent(instance) + "/depool", withAuthor({ section }));
            model.staged = true;
            const message = document.getElementById("commit-message");
            if (!message.value) message.value = "depool " + instance + " in " + section;
            say("Depool of " + instance + " in " + section + " staged, not committed: review and commit it above.", "ok");
            render();
          } catch (error) {
            say("Depool of " + instance + " refused: " + error.message, "error");
          }
        }

        function describeDiff(diff) {
          if (typeof diff === "string") return diff;
          const lines = [];
          for (const change of (diff && diff.changes) || []) {
            lines.push(change.datacenter + " " + change.key + " " + change.entry + ": "
              + (change.before ?? "absent") + " → " + (change.after ?? "absent"));
          }
          for (const issue of (diff && diff.issues) || []) {
            lines.push("INVALID " + (issue.path ? issue.path + ": " : "") + (issue.message || JSON.stringify(issue)));
          }
          return lines.length ? lines.join("\n") : "No change to the generated configuration.";
        }

        async function commit() {
          const message = document.getElementById("commit-message").value.trim();
          if (!message) { say("Say why in the commit message.", "error"); return; }
          let diff;
          try { diff = await api("GET", "api/v1/config/diff"); }
          catch (error) { say("Cannot read the staged diff: " + error.message, "error"); return; }
          if (diff && Array.isArray(diff.issues) && diff.issues.length) {
            say("The staged changes are invalid and cannot be committed:\n" + describeDiff(diff), "error");
            return;
          }
          const question = "Commit the staged changes? Applications read them within a second.\n\n" + describeDiff(diff)
            + "\n\nMessage: " + message;
          if (!confirm(question)) return;
          try {
            const result = await api("POST", "api/v1/config/commit", withAuthor({ message }));
            model.staged = false;
            document.getElementById("commit-message").value = "";
            say(result && result.outcome === "nothing to commit" ? "Nothing to commit." : "Committed: " + message, "ok");
          } catch (error) {
            say("Commit refused: " + error.message, "error");
          }
        }

        document.getElementById("token-form").addEventListener("submit", (event) => {
          event.preventDefault();
          const input = document.getElementById("token");
          const value = input.value.trim();
          input.value = "";
          const author = document.getElementById("author").value.trim();
          if (author) sessionStorage.setItem(AUTHOR_KEY, author); else sessionStorage.removeItem(AUTHOR_KEY);
          if (value) { sessionStorage.setItem(TOKEN_KEY, value); say("Token kept for this tab only: actions enabled.", "ok"); }
          render();
        });
        document.getElementById("token-forget").addEventListener("click", () => {
          sessionStorage.removeItem(TOKEN_KEY);
          sessionStorage.removeItem(AUTHOR_KEY);
          document.getElementById("author").value = "";
          say("Token forgotten: read-only.", "ok");
          render();
        });
        document.getElementById("commit").addEventListener("click", commit);
        document.getElementById("author").value = sessionStorage.getItem(AUTHOR_KEY) || "";
        loop();
        </script>
        </body>
        </html>
        """#
}
