import Controller
import Testing

/// The test-only hooks (`pause_before`, `pause_after`, and with them the `testing/resume/`
/// keys) are refused in a configuration that does not enable them explicitly.
@Suite("Controller configuration: test hooks")
struct TestHookGateTests {
    static let base = "etcd: {endpoints: [http://x]}\nmariadb: {credentials_file: f}\nplaybooks: p\n"

    @Test("pause_before without testing.enable_hooks is refused with the setting named")
    func pauseBeforeRefused() {
        #expect(
            throws: ControllerError.configuration(
                "c.yaml: pause_before is a test-only hook: it is refused unless the configuration also sets testing: {enable_hooks: true} (never in production)"
            )
        ) { try ControllerConfiguration.parse(Self.base + "pause_before: candidate-writable\n", file: "c.yaml") }
    }

    @Test(
        "pause_after, and enable_hooks: false, are refused the same way",
        arguments: [
            "pause_after: commit-primary\n", "pause_after: commit-primary\ntesting: {enable_hooks: false}\n",
        ])
    func pauseAfterRefused(lines: String) {
        #expect(
            throws: ControllerError.configuration(
                "c.yaml: pause_after is a test-only hook: it is refused unless the configuration also sets testing: {enable_hooks: true} (never in production)"
            )
        ) { try ControllerConfiguration.parse(Self.base + lines, file: "c.yaml") }
    }

    @Test("with testing.enable_hooks: true the hooks load; without hooks, nothing is enabled")
    func enabled() throws {
        let configuration = try ControllerConfiguration.parse(
            Self.base + "pause_before: take-lock\npause_after: commit-primary\ntesting: {enable_hooks: true}\n", file: "c.yaml")
        #expect(configuration.testing.enableHooks)
        #expect(configuration.pauseBefore == "take-lock" && configuration.pauseAfter == "commit-primary")
        #expect(try ControllerConfiguration.parse(Self.base, file: "c.yaml").testing.enableHooks == false)
        #expect(throws: (any Error).self) { try ControllerConfiguration.parse(Self.base + "testing: {enable_hook: true}\n", file: "c.yaml") }
    }
}
