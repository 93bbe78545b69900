// Package safefs opens, creates and inspects files strictly beneath a root
// directory, never following a symbolic link below it: the guard every
// restore path uses when the names and links it meets come from a snapshot
// and so are untrusted input.
//
// A Root is a directory the caller chose (links on the way to it are the
// caller's business and are followed once, when it is opened). Names
// passed to a Root's methods are slash-separated paths relative to it;
// an absolute name, an empty component, "." or ".." is refused before any
// system call. Every component is then resolved without following a
// symbolic link: a link anywhere in the name is refused with ErrSymlink,
// whether it points inside the root or out of it, and a file expected to
// be regular that is anything else (a directory, FIFO, device, socket) is
// refused with ErrNotRegular before it is opened for writing, so writing
// never blocks on a FIFO nor reaches a device.
//
// On Linux 5.6 and later the directory part of a name is resolved in one
// openat2(2) call with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS; on older kernels, where seccomp refuses openat2,
// and on the other Unix systems it is walked one component at a time with
// openat(2) and O_NOFOLLOW|O_DIRECTORY. The last component is always
// checked with fstatat(AT_SYMLINK_NOFOLLOW), opened relative to its
// directory with O_NOFOLLOW|O_NONBLOCK, and its type checked again on the
// open descriptor. On Windows the same checks are made through os.Root
// and Lstat; they are not atomic there against a concurrent writer in the
// tree, which a restore does not have.
//
// safefs imports nothing of Bunker, so every layer may use it.
package safefs
