"use strict";
// The guard's page: budget, counts, findings and the latest requests, from /__guard/report and /__guard/requests.
(() => {
  const { el, setText, clear, api, refusal, clock } = UI;
  const POLL_MS = 700;
  const MAX_ROWS = 200;
  const requests = UI.feed("requests", "requests-empty", "requests-count", MAX_ROWS, "newest first; click a row for details");

  function describe(entry) {
    const error = entry.error;
    const said = error ? `${error.param ? error.param + " — " : ""}${error.message ?? ""}` : "";
    switch (entry.verdict) {
      case "blocked":
        return ["refused", `refused: ${said}`];
      case "budget":
        return ["refused", `over budget: ${said}`];
      case "upstream-error":
        return ["fault", `upstream error: ${said}`];
      case "forwarded":
        return error
          ? ["fault", `forwarded; the upstream answered ${entry.status} ${error.code ?? ""}: ${said}`]
          : ["created", entry.status === 200 ? "forwarded; billed create" : `forwarded; the upstream answered ${entry.status}`];
      case "passed":
        return ["", "passed through to the upstream"];
      default:
        return ["fault", `guard ${entry.verdict}: ${said}`];
    }
  }

  function requestRow(entry) {
    const [cls, text] = describe(entry);
    const row = el(
      "details",
      "row",
      el(
        "summary",
        "",
        el("span", "", clock(entry.time)),
        el("span", "", String(entry.method)),
        el("span", "", String(entry.path)),
        el("span", "s" + String(entry.status)[0], String(entry.status)),
        el("span", "", String(entry.verdict)),
        el("span", "detail " + cls, text),
      ),
      el("pre", "", JSON.stringify(entry, null, 2)),
    );
    return row;
  }

  async function pollRequests() {
    const answer = await api(`/__guard/requests?after=${requests.after()}&limit=500`);
    if (!answer.ok || !answer.data || !Array.isArray(answer.data.requests)) throw new Error(refusal(answer, "requests unreadable"));
    setText("in-flight", String(answer.data.in_flight));
    requests.add(answer.data.requests, requestRow);
  }

  async function pollReport() {
    const answer = await api("/__guard/report");
    if (!answer.ok || !answer.data) throw new Error(refusal(answer, "report unreadable"));
    const report = answer.data;
    setText("upstream", `guarding ${report.upstream}`);
    setText("billed", String(report.creates));
    setText("uncertain", String(report.uncertain));
    setText("left", String(report.budget_left));
    setText("left-label", `left of ${report.max_creates}`);
    setText("forwarded", String(report.forwarded));
    setText("blocked", String(report.blocked));
    setText("passed", String(report.passed));
    setText("over-budget", String(report.over_budget));
    const used = report.max_creates - report.budget_left;
    const resets = report.resets ? ` (the budget was reset ${report.resets} time(s); billed and uncertain count the whole run)` : "";
    setText("budget-text", `${report.budget_left} of ${report.max_creates} create(s) left in this budget${resets}`);
    document.querySelector("#budget-bar > div").style.width = report.max_creates
      ? `${Math.round((100 * used) / report.max_creates)}%`
      : "100%";
    const list = document.getElementById("findings");
    clear(list);
    setText("findings-count", `(${report.findings.length})`);
    for (const finding of report.findings) {
      const problems = Array.isArray(finding.problems) ? finding.problems.map(String).join("; ") : String(finding.problems);
      const status = finding.status === null ? "no answer" : `HTTP ${finding.status}`;
      list.append(
        el(
          "li",
          "",
          el("span", "muted", String(finding.time) + " "),
          `${status}: ${problems} `,
          el("span", "muted", JSON.stringify(finding.request)),
        ),
      );
    }
    if (!report.findings.length) list.append(el("li", "muted", "No finding: every upstream answer met the contract."));
  }

  async function tick() {
    const status = document.getElementById("status");
    try {
      await Promise.all([pollReport(), pollRequests()]);
      status.className = "status";
      status.textContent = `live · updated ${clock(Date.now() / 1000).slice(0, 8)}`;
    } catch (error) {
      status.className = "status down";
      status.textContent = `cannot read the guard: ${error.message}`;
    }
    setTimeout(tick, POLL_MS);
  }

  UI.confirmButton(document.getElementById("reset"), "Start a new budget?", async () => {
    const answer = await api("/__guard/reset", "POST", {});
    const node = document.getElementById("reset-message");
    node.className = "message " + (answer.ok ? "good" : "bad");
    node.textContent = answer.ok ? `A new budget started: ${answer.data.budget_left} create(s) left.` : refusal(answer, "not reset");
    await pollReport();
  });
  tick();
})();
