import MarinaTwins
import Testing

@Suite struct ManualClockTests {
    @Test func movesOnlyWhenAdvanced() {
        let clock = ManualClock()
        #expect(clock.now == .zero)
        clock.advance(seconds: 1.5)
        #expect(clock.now == .milliseconds(1500))
    }
}
