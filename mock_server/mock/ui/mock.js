"use strict";
// The mock's page: journal, coverage, faults, stubs and reset, all through the /__mock/ admin API.
(() => {
  const { el, setText, clear, api, refusal, clock } = UI;
  const POLL_MS = 500;
  const MAX_ROWS = 300;
  const EXAMPLE_STUB = {
    match: { body: { from_task: "video_e50c76ca-21d4-40e9-8485-e4ead2d37133" } },
    response: {
      status: 404,
      json: { error: { message: "Task not found.", type: "invalid_request_error", param: "from_task", code: "task_not_found" } },
    },
    times: 1,
  };
  const journal = UI.feed("journal", "journal-empty", "journal-count", MAX_ROWS, "newest first; click a row for the request and answer");
  let timer = null;
  const gate = UI.gate(start);

  function message(id, text, good) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.className = "message " + (good ? "good" : "bad");
  }

  // ---- journal
  function verdict(entry) {
    const tags = [];
    let text;
    const error = entry.error;
    if (entry.stub) {
      tags.push(["stubbed", "stubbed"]);
      text = `stubbed answer (stub ${String(entry.stub).slice(0, 8)}${entry.off_contract ? ", off contract" : ""})`;
      if (error) text += `: ${error.message}`;
    } else if (entry.status === null || entry.outcome === "dropped") {
      tags.push(["fault", "fault"]);
      text = "fault: connection dropped, no answer sent";
    } else if (error && (entry.status === 429 || entry.status >= 500)) {
      tags.push(["fault", "fault"]);
      text = `fault: ${entry.status} ${entry.outcome} — ${error.message}`;
    } else if (error) {
      tags.push(["refused", "refused"]);
      text = `refused: ${error.param ? error.param + " — " : ""}${error.message}`;
    } else if (entry.outcome === "created") {
      tags.push(["created", "created"]);
      text = "character created";
    } else {
      text = String(entry.outcome ?? "");
    }
    return [tags, text];
  }

  function journalRow(entry) {
    const [tags, text] = verdict(entry);
    const status = entry.status === null ? "—" : String(entry.status);
    const statusClass = entry.status === null ? "sx" : "s" + String(entry.status)[0];
    const detail = el("span", "detail " + tags.map(([cls]) => cls).join(" "), text);
    const summary = el(
      "summary",
      "",
      el("span", "", clock(entry.time)),
      el("span", "", String(entry.method)),
      el("span", "", String(entry.path)),
      el("span", statusClass, status),
      el("span", "", String(entry.outcome ?? "")),
      detail,
    );
    summary.title = text;
    const answerKeys = ["status", "outcome", "error", "stub", "off_contract"];
    const request = {};
    const answer = {};
    for (const [key, value] of Object.entries(entry)) {
      if (key === "seq" || key === "time") continue;
      (answerKeys.includes(key) ? answer : request)[key] = value;
    }
    const row = el(
      "details",
      "row",
      summary,
      el("div", "muted", `#${entry.seq} at ${new Date(entry.time * 1000).toISOString()}`),
      el("strong", "", "Request"),
      el("pre", "", JSON.stringify(request, null, 2)),
      el("strong", "", "Answer (as journaled)"),
      el("pre", "", JSON.stringify(answer, null, 2)),
    );
    return row;
  }

  async function pollJournal() {
    // The oldest entry still kept: rows older than it were reset away (or aged out of the journal).
    const oldest = await api("/__mock/requests?limit=1");
    journal.keepFrom(Array.isArray(oldest.data) && oldest.data.length ? oldest.data[0].seq : null);
    const answer = await api(`/__mock/requests?after=${journal.after()}&limit=500`);
    if (!answer.ok || !Array.isArray(answer.data)) throw new Error(refusal(answer, "journal unreadable"));
    journal.add(answer.data, journalRow);
  }

  // ---- coverage
  function coverageRow(row, most, box) {
    const met = row.seen > 0;
    const bar = el("div", "bar", el("div"));
    bar.firstChild.style.width = most ? `${Math.round((100 * row.seen) / most)}%` : "0";
    box.append(
      el("span", "badge " + (met ? "met" : "unmet"), met ? "✓ met" : "never met"),
      el("span", "", String(row.outcome)),
      el("span", "muted", row.status === null ? "—" : String(row.status)),
      bar,
      el("span", "count", String(row.seen)),
    );
  }

  async function pollCoverage() {
    const answer = await api("/__mock/coverage");
    if (!answer.ok || !answer.data) return;
    const report = answer.data;
    setText("coverage-summary", `${report.met} of ${report.total} outcomes met since the last reset`);
    document.querySelector("#coverage-total > div").style.width = `${Math.round((100 * report.met) / report.total)}%`;
    const box = document.getElementById("coverage");
    clear(box);
    const rows = [...report.outcomes, ...(report.stubbed || [])];
    const most = Math.max(0, ...rows.map((row) => row.seen));
    for (const row of report.outcomes) coverageRow(row, most, box);
    const stubbed = document.getElementById("coverage-stubbed");
    clear(stubbed);
    if (report.stubbed && report.stubbed.length) {
      stubbed.append(el("h3", "", "Stubbed outcomes outside the catalogue"));
      const more = el("div", "cov");
      for (const row of report.stubbed) coverageRow(row, most, more);
      stubbed.append(more);
    }
  }

  // ---- faults
  function describeFault(fault) {
    const parts = [];
    if (fault.drop) parts.push("dropped connection (no answer)");
    else if (fault.status === 429) parts.push(`429 rate_limit_exceeded, Retry-After ${fault.retry_after ?? 1} s`);
    else if (fault.status !== null && fault.status !== undefined) {
      parts.push(`${fault.status} ${fault.status >= 500 ? "server_error" : "error"}`);
      if (fault.retry_after !== null && fault.retry_after !== undefined) parts.push(`Retry-After ${fault.retry_after} s`);
    }
    if (fault.delay_ms) parts.push(`delayed ${fault.delay_ms} ms`);
    return parts.join(", ") || "no change";
  }

  async function pollFaults() {
    const answer = await api("/__mock/faults");
    if (!answer.ok || !Array.isArray(answer.data)) return;
    const list = document.getElementById("faults");
    clear(list);
    answer.data.forEach((item, index) => {
      const when = index === 0 ? "next" : "then";
      list.append(el("li", "", `${when}: ${describeFault(item.fault)} — for ${item.times} more request(s)`));
    });
    if (!answer.data.length) list.append(el("li", "muted", "Nothing queued: requests are answered normally."));
  }

  function number(id) {
    return Number.parseInt(document.getElementById(id).value, 10);
  }

  async function queueFault(fault) {
    const body = { ...fault, times: number("fault-times") };
    const answer = await api("/__mock/faults", "POST", body);
    if (answer.status === 201) message("fault-message", `queued: ${describeFault(answer.data.queued.fault)} × ${answer.data.queued.times}`, true);
    else message("fault-message", refusal(answer, "not queued"), false);
    await pollFaults();
  }

  // ---- stubs
  function describeStub(stub) {
    const json = stub.response.json;
    const code = json && typeof json === "object" && json.error && typeof json.error === "object" ? json.error.code : null;
    const what = stub.response.status === 200 ? "200 character" : `${stub.response.status} ${code ?? ""}`;
    const match = Object.keys(stub.match).length ? `when ${JSON.stringify(stub.match)}` : "for every request";
    const remaining = stub.remaining === null ? "unlimited" : `${stub.remaining} left`;
    return `${what} ${match} — ${stub.hits} hit(s), ${remaining}`;
  }

  async function pollStubs() {
    const answer = await api("/__mock/stubs");
    if (!answer.ok || !Array.isArray(answer.data)) return;
    const list = document.getElementById("stubs");
    clear(list);
    for (const stub of answer.data) {
      const remove = el("button", "danger", "Delete");
      remove.addEventListener("click", async () => {
        const result = await api(`/__mock/stubs/${encodeURIComponent(stub.id)}`, "DELETE", {});
        if (result.ok) message("stub-message", `stub ${String(stub.id).slice(0, 8)} deleted`, true);
        else message("stub-message", refusal(result, "not deleted"), false);
        await pollStubs();
      });
      const item = el("li", "", el("span", "muted", String(stub.id).slice(0, 8) + " "));
      if (stub.off_contract) item.append(el("span", "tag off-contract", "off contract"));
      item.append(describeStub(stub), " ", remove);
      list.append(item);
    }
    if (!answer.data.length) list.append(el("li", "muted", "No stub: every valid request gets a generated character."));
  }

  async function addStub() {
    const answer = await api("/__mock/stubs", "POST", document.getElementById("stub-editor").value);
    if (answer.status === 201) message("stub-message", `stub added: ${describeStub(answer.data)} (id ${String(answer.data.id).slice(0, 8)})`, true);
    else message("stub-message", refusal(answer), false);
    await pollStubs();
  }

  // ---- the loop
  async function tick() {
    try {
      await pollJournal();
      await Promise.all([pollCoverage(), pollFaults(), pollStubs()]);
      gate.opened();
      const status = document.getElementById("status");
      status.className = "status";
      status.textContent = `live · updated ${clock(Date.now() / 1000).slice(0, 8)}`;
    } catch (error) {
      if (error instanceof UI.Unauthorized) {
        gate.locked(UI.hasToken() ? "That token was refused: enter the admin token." : "Enter the admin token.");
        return; // no polling until a token is given
      }
      const status = document.getElementById("status");
      status.className = "status down";
      status.textContent = `cannot read the mock: ${error.message}`;
    }
    timer = setTimeout(tick, POLL_MS);
  }

  function start() {
    clearTimeout(timer);
    journal.clear();
    tick();
  }

  function wire(id, action) {
    document.getElementById(id).addEventListener("click", () => action().catch(failed));
  }

  function failed(error) {
    if (error instanceof UI.Unauthorized) gate.locked("That token was refused: enter the admin token.");
    else message("fault-message", `failed: ${error.message}`, false);
  }

  document.getElementById("stub-editor").value = JSON.stringify(EXAMPLE_STUB, null, 2);
  wire("fault-429", () => queueFault({ status: 429, retry_after: number("fault-retry") }));
  wire("fault-500", () => queueFault({ status: 500 }));
  wire("fault-503", () => queueFault({ status: 503 }));
  wire("fault-delay-button", () => queueFault({ delay_ms: number("fault-delay") }));
  wire("fault-drop", () => queueFault({ drop: true }));
  wire("stub-add", addStub);
  UI.confirmButton(document.getElementById("stub-clear"), "Delete every stub?", async () => {
    const answer = await api("/__mock/stubs", "DELETE", {});
    message("stub-message", answer.ok ? "every stub deleted" : refusal(answer, "not deleted"), answer.ok);
    await pollStubs();
  });
  UI.confirmButton(
    document.getElementById("reset"),
    "Clear the journal, characters, faults, stubs and coverage?",
    async () => {
      const answer = await api("/__mock/reset", "POST", {});
      message("reset-message", answer.ok ? "The mock was reset." : refusal(answer, "not reset"), answer.ok);
      start();
    },
  );
  start();
})();
