package safefs

// HaveOpenat2Switch says the tests can run both resolution modes.
const HaveOpenat2Switch = true

// ForceWalk makes the package walk components instead of using openat2,
// as on kernels before 5.6, until the returned function is called.
func ForceWalk() func() {
	old := noOpenat2.Load()
	noOpenat2.Store(true)
	return func() { noOpenat2.Store(old) }
}
