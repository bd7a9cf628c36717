import Foundation
import MarinaSandbox
import MarinaTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The topology page the controller serves at `/`, opened in Debian's headless Chromium
/// against a real sandbox: what a DBA would see, read from the DOM the page's script built.
@Suite("Web page", .serialized)
struct WebPageTests {
    @Test(
        "the page shows s1's tree and roles, a replica whose SQL thread stopped as lagging, a paused switchover's steps, then its write window"
    )
    func topologyPage() async throws {
        let browser = try Chromium()
        let sandbox = try await TestServers.privateSandbox("web-page", replicas: 2, controller: true)
        defer { TestServers.stop(sandbox) }
        let http = try #require(sandbox.http, "the sandbox serves no HTTP")
        let url = http.controllerURL + "/"
        let profile = sandbox.directory + "/chromium"

        // The page itself: HTML, with nothing to fetch from anywhere but the controller.
        let source = try await pageSource(url)
        #expect(source.contentType.hasPrefix("text/html"), "GET / answered \(source.contentType)")
        for outside in ["http://", "https://", "<link", " src=", "innerHTML", "@import"] {
            #expect(!source.body.contains(outside), "the page contains \(outside)")
        }

        // Section s1 as a tree: db1001 the primary, db1002 and db1003 replicating from it.
        var dom = try await browser.dom(url, profile: profile, until: "the three instances of s1 as configured") { dom in
            let rows = instanceRows(dom)
            return rows["db1001"]?["data-observed-role"] == "primary" && rows["db1002"]?["data-health"] == "ok"
                && rows["db1003"]?["data-health"] == "ok"
        }
        #expect(dom.contains("data-loaded=\"true\""), "the page never finished a poll")
        #expect(elementText(dom, id: "controller-id") == "sandbox-controller")
        #expect(elementText(dom, id: "leader") == "sandbox-controller")
        #expect(attributes("div", with: "data-section", in: dom).map { $0["data-section"] } == ["s1"])
        let rows = instanceRows(dom)
        #expect(rows.keys.sorted() == ["db1001", "db1002", "db1003"])
        #expect(rows["db1001"]?["data-configured-role"] == "primary")
        #expect(rows["db1001"]?["data-depth"] == "0")
        for replica in ["db1002", "db1003"] {
            #expect(rows[replica]?["data-configured-role"] == "replica", "\(replica): \(rows[replica] ?? [:])")
            #expect(rows[replica]?["data-observed-role"] == "replica", "\(replica): \(rows[replica] ?? [:])")
            #expect(rows[replica]?["data-source"] == "db1001", "\(replica): \(rows[replica] ?? [:])")
            #expect(rows[replica]?["data-depth"] == "1", "\(replica): \(rows[replica] ?? [:])")
            #expect(rows[replica]?["class"]?.contains("lagging") == false, "\(replica): \(rows[replica] ?? [:])")
        }

        // A replica whose SQL thread stops is shown as lagging, and as healthy once it runs again.
        try await execute(sandbox, "db1003", "STOP SLAVE SQL_THREAD")
        dom = try await browser.dom(url, profile: profile, until: "db1003 shown with its replication stopped") { dom in
            instanceRows(dom)["db1003"]?["data-health"] == "stopped"
        }
        let stopped = instanceRows(dom)["db1003"] ?? [:]
        #expect(stopped["class"]?.split(separator: " ").contains("lagging") == true, "\(stopped)")
        #expect(instanceRows(dom)["db1002"]?["data-health"] == "ok")
        try await execute(sandbox, "db1003", "START SLAVE SQL_THREAD")
        _ = try await browser.dom(url, profile: profile, until: "db1003 healthy again") { dom in
            instanceRows(dom)["db1003"]?["data-health"] == "ok"
        }

        // A switchover held before the point of no return: its steps live, the earlier ones done.
        let id = try await switchoverPaused(sandbox, before: "candidate-writable", to: "db1002")
        let paused = try #require(try await operation(sandbox, id)?.pausedBefore)
        dom = try await browser.dom(url, profile: profile, until: "the paused switchover's steps in s1") { dom in
            operationPanel(dom, section: "s1")?.id == id
        }
        let panel = try #require(operationPanel(dom, section: "s1"))
        #expect(panel.state == "running")
        let states = panel.steps.map { $0["data-state"] ?? "?" }
        let current = try #require(states.firstIndex { $0 != "done" }, "every step is done: \(panel.steps)")
        #expect(current > 0, "no step done before the pause: \(states)")
        #expect(panel.steps[current]["data-step"] == paused, "\(panel.steps[current])")
        #expect(["pending", "running"].contains(states[current]), "\(states)")
        #expect(states[(current + 1)...].allSatisfy { $0 == "pending" }, "\(states)")
        #expect(panel.steps.filter { $0["data-point-of-no-return"] == "true" }.count == 1, "\(panel.steps)")
        let screenshot = try await browser.screenshot(url, profile: profile, to: Self.screenshotPath)
        #expect(screenshot > 10_000, "the screenshot at \(Self.screenshotPath) has \(screenshot) bytes")

        // Finished: the recent operations show it done, with its write window; db1002 leads.
        try await resume(sandbox, id)
        let record = try await waitForOperation(sandbox, id, seconds: 60) { $0.state.isFinished }
        #expect(record.state == .done, "\(record.state) \(record.attention)")
        dom = try await browser.dom(url, profile: profile, until: "the switchover done in the recent operations, db1002 the primary") { dom in
            let row = attributes("tr", with: "data-operation", in: dom).first { $0["data-operation"] == id }
            return row?["data-state"] == "done" && instanceRows(dom)["db1002"]?["data-configured-role"] == "primary"
                && operationPanel(dom, section: "s1") == nil
        }
        let windows = attributes("td", with: "data-window-ms", in: section(of: dom, from: "id=\"recent-operations\"", to: "</table>"))
        let window = windows.first.flatMap { $0["data-window-ms"] }.flatMap(Double.init)
        #expect(window.map { $0 > 0 && abs($0 - (record.windowMilliseconds ?? -1)) < 0.001 } == true, "write window \(windows)")
    }

    /// `<package root>/.build/screenshots/web-page.png`, kept for a human to look at.
    static let screenshotPath: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/screenshots/web-page.png").path
    }()
}

/// Debian's Chromium, headless, one run per page load, with a profile of the test's own.
struct Chromium {
    static let executable = "/usr/bin/chromium"

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw SandboxError.invalidArgument("the web page tests need Debian's chromium at \(Self.executable): apt-get install chromium")
        }
    }

    /// Loads `url` until `condition` holds on the DOM its script built (each load runs the
    /// page's polls for a few seconds of virtual time), or fails naming `what` after `seconds`.
    func dom(_ url: String, profile: String, until what: String, seconds: Double = 180, _ condition: (String) -> Bool) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        var last = ""
        while Date() < deadline {
            last = try await run(url, profile: profile, ["--dump-dom"])
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw SandboxError.invalidArgument("the page did not show \(what) within \(Int(seconds)) s; last DOM:\n\(last.suffix(6000))")
    }

    /// A 1400 × 1000 screenshot of `url` at `path`; gives its size in bytes.
    func screenshot(_ url: String, profile: String, to path: String) async throws -> Int {
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: path)
        _ = try await run(url, profile: profile, ["--screenshot=\(path)", "--window-size=1400,1000", "--hide-scrollbars"])
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        return size ?? 0
    }

    /// One headless run; gives its standard output. Killed, with every process of its profile,
    /// when it outlives `seconds` (a loaded machine makes Chromium slow, never this slow).
    private func run(_ url: String, profile: String, _ arguments: [String], seconds: Double = 120) async throws -> String {
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        let output = profile + "/stdout"
        guard FileManager.default.createFile(atPath: output, contents: nil),
            FileManager.default.createFile(atPath: profile + "/stderr", contents: nil)
        else { throw SandboxError.invalidArgument("cannot create the files of \(profile)") }
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: profile + "/stderr"))
        defer {
            try? stdout.close()
            try? stderr.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments =
            [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                // Nothing but the page's own requests: no component updates, no pings.
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-pings",
                "--user-data-dir=\(profile)", "--virtual-time-budget=3000",
            ] + arguments + [url]
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning {
            process.terminate()
            for pid in processes(containing: "--user-data-dir=\(profile)") { kill(pid, SIGKILL) }
            throw SandboxError.invalidArgument("chromium did not finish loading \(url) within \(Int(seconds)) s")
        }
        return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    }
}

/// `GET url`: the body and its content type.
private func pageSource(_ url: String) async throws -> (body: String, contentType: String) {
    var last = ""
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        do {
            let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
            let http = response as? HTTPURLResponse
            if http?.statusCode == 200 {
                return (String(decoding: data, as: UTF8.self), http?.value(forHTTPHeaderField: "Content-Type") ?? "")
            }
            last = "status \(http?.statusCode ?? 0)"
        } catch {
            last = "\(error)"
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw SandboxError.invalidArgument("GET \(url) never answered 200: \(last)")
}

/// The attributes of each `tag` element that carries `attribute`, in document order, read from
/// Chromium's serialization (attribute values double-quoted, `"` and `&` escaped).
private func attributes(_ tag: String, with attribute: String, in html: some StringProtocol) -> [[String: String]] {
    let text = String(html)
    var result = [[String: String]]()
    var rest = text[...]
    while let start = rest.range(of: "<\(tag) ") {
        guard let end = rest[start.upperBound...].firstIndex(of: ">") else { break }
        let inside = rest[start.upperBound..<end]
        rest = rest[end...]
        var values = [String: String]()
        var scan = inside[...]
        while let equals = scan.range(of: "=\"") {
            let name = scan[..<equals.lowerBound].trimmingCharacters(in: .whitespaces).split(separator: " ").last.map(String.init) ?? ""
            guard let close = scan[equals.upperBound...].firstIndex(of: "\"") else { break }
            values[name] = String(scan[equals.upperBound..<close]).replacingOccurrences(of: "&quot;", with: "\"")
                .replacingOccurrences(of: "&amp;", with: "&")
            scan = scan[scan.index(after: close)...]
        }
        if values[attribute] != nil { result.append(values) }
    }
    return result
}

/// The instance rows of the page, by instance name.
private func instanceRows(_ dom: String) -> [String: [String: String]] {
    let rows = attributes("tr", with: "data-instance", in: dom).filter { $0["class"]?.split(separator: " ").contains("instance") == true }
    return Dictionary(rows.map { ($0["data-instance"] ?? "", $0) }, uniquingKeysWith: { first, _ in first })
}

/// The running operation a section shows: its id, state and steps (in order).
private func operationPanel(_ dom: String, section name: String) -> (id: String, state: String, steps: [[String: String]])? {
    let panel = section(of: dom, from: "id=\"operation-\(name)\"", to: "</ol>")
    guard !panel.isEmpty, let head = attributes("div", with: "data-operation", in: "<div " + panel).first else { return nil }
    return (head["data-operation"] ?? "", head["data-state"] ?? "", attributes("li", with: "data-step", in: panel))
}

/// The text from `start` (included) to the next `end`, or empty.
private func section(of text: String, from start: String, to end: String) -> Substring {
    guard let lower = text.range(of: start) else { return "" }
    let upper = text[lower.lowerBound...].range(of: end)?.upperBound ?? text.endIndex
    return text[lower.lowerBound..<upper]
}

/// The text of the element with `id`, when it holds text alone.
private func elementText(_ dom: String, id: String) -> String? {
    guard let at = dom.range(of: "id=\"\(id)\""), let open = dom[at.upperBound...].firstIndex(of: ">"),
        let close = dom[open...].firstIndex(of: "<")
    else { return nil }
    return String(dom[dom.index(after: open)..<close])
}
