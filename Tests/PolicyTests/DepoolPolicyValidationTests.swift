import Policy
import Testing

/// A NaN compared with `<` or `>` is never out of range: each key must be refused by name
/// instead of silently turning off the guard it sets.
@Suite("Depool policy: numbers that are not finite or out of range")
struct DepoolPolicyValidationTests {
    @Test(
        "each key with a NaN, an infinity or a huge number is named",
        arguments: [
            ("depool_lag", DepoolPolicy(depoolLag: .nan), "nan"),
            ("depool_after", DepoolPolicy(depoolAfter: .infinity), "inf"),
            ("repool_lag", DepoolPolicy(repoolLag: .nan), "nan"),
            ("repool_after", DepoolPolicy(repoolAfter: -.infinity), "-inf"),
            ("step_pause", DepoolPolicy(stepPause: .nan), "nan"),
            ("min_interval", DepoolPolicy(minInterval: .nan), "nan"),
            ("min_interval", DepoolPolicy(minInterval: 1e12), "1000000000000.0"),
        ])
    func seconds(key: String, policy: DepoolPolicy, shown: String) {
        #expect(policy.problems() == ["\(key) must be a finite number of seconds, at most 86400 (got \(shown))"])
    }

    @Test("max_depooled_fraction must be a number between 0 and 1")
    func fraction() {
        #expect(DepoolPolicy(maxDepooledFraction: .nan).problems() == ["max_depooled_fraction must be between 0 and 1 (got nan)"])
        #expect(DepoolPolicy(maxDepooledFraction: 2).problems() == ["max_depooled_fraction must be between 0 and 1 (got 2.0)"])
    }
}
