// Package faulty wraps a storage.Backend to inject faults, for tests of the
// code above the storage layer.
//
// A Backend passes every call through to the wrapped backend unless one of
// its knobs says otherwise:
//
//   - FailNth: the n-th call of an operation from now on fails with an error.
//   - FailWhen: a predicate decides per call whether it fails.
//   - ShortRead: Load hands its callback a reader that breaks off early
//     with io.ErrUnexpectedEOF.
//   - FlipBit: Load hands its callback the data with one bit flipped.
//   - RetryLoad: Load calls its callback twice, first with a broken reader,
//     as a retrying backend would.
//   - SetLatency: calls are delayed.
//   - CrashAfter: after n more successful Saves, every Save and Remove fails
//     with ErrCrashed, as if the process had died.
//
// Calls and Injected count operations for assertions. All knobs are safe
// to turn while other goroutines use the backend.
package faulty
