// Package mem implements storage.Backend in memory, for tests.
//
// Objects are copied on Save and on Load, so neither the caller's buffer nor
// the reader handed to Load's callback aliases the stored bytes. The clock
// used for ModTime can be injected (NewWithClock), conditional creates are
// atomic, and the backend can be switched to append-only mode to play a
// store whose credential may not delete or overwrite (SetAppendOnly).
package mem
