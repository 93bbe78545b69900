package restorer

// SetReadaheadLimits lowers read-ahead's memory bounds (decoded blobs
// waiting for their first file, shared blobs kept for later files), so
// that a small test tree meets them.
func SetReadaheadLimits(r *Restorer, ready, kept int64) { r.limits = [2]int64{ready, kept} }

// SpillWritten is how many bytes the last restore wrote to its spill
// file.
func SpillWritten(r *Restorer) int64 {
	if r.ra == nil {
		return 0
	}
	r.ra.mu.Lock()
	defer r.ra.mu.Unlock()
	return r.ra.spill.written
}
