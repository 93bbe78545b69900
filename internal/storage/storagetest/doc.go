// Package storagetest is the conformance suite of storage.Backend: Run
// checks every rule of the contract written on the interface against a
// backend implementation.
//
// A backend package runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Backend {
//			be, err := local.Create(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return be
//		})
//	}
//
// newBackend is called once per subtest and must return an empty backend
// that is not shared with other subtests; it should register its own
// cleanup (the suite does not call Close). Checks of optional features
// (conditional create, append-only) run when Features reports them.
//
// Besides the suite, it holds checks and scaffolding shared by the tests
// of the backends that talk to a server: helpers.go (leaks, isolation,
// a server that dies) and hostile.go (replies of services that are not
// the store, none of which an error may quote).
package storagetest
