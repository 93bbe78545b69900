// Package sftp implements storage.Backend on a directory of an SFTP server
// reached over SSH (github.com/pkg/sftp on golang.org/x/crypto/ssh). It is
// written for, and tested against, OpenSSH's sftp-server/internal-sftp.
//
// # Location
//
//	sftp:[user@]host:/absolute/path
//	sftp:[user@]host:relative/path          relative to the login directory
//	sftp:[user@]host:~/relative/path        the same
//	sftp:[user@][::1]:/path                 IPv6 address in brackets
//	sftp://[user@]host[:port]/absolute/path
//	sftp://[user@]host[:port]/~/relative/path
//	sftp://[user@][::1]:port/path
//
// The scp-like forms use port 22; give another port with the URL form. The
// URL form may percent-encode characters (%40 for an @ in the user name,
// %20 for a space in the path). Without a user, $USER is used. Passwords in
// the location are refused: the tool never prompts and logs in with keys
// only.
//
// # Environment
//
//	BUNKER_SFTP_KEY             private key file to log in with; "~/" is expanded.
//	                            Default: those of ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa
//	                            and ~/.ssh/id_rsa that exist.
//	BUNKER_SFTP_KEY_PASSPHRASE  passphrase of an encrypted key file. Without it an
//	                            encrypted BUNKER_SFTP_KEY is an error; an encrypted
//	                            default key is skipped when an agent is set.
//	SSH_AUTH_SOCK               ssh-agent socket; its keys are offered first, then
//	                            the key file(s). An unreachable agent is skipped.
//	BUNKER_SFTP_KNOWN_HOSTS     known_hosts file the host key must be in.
//	                            Default: ~/.ssh/known_hosts, then
//	                            /etc/ssh/ssh_known_hosts. Missing files count as empty.
//	BUNKER_SFTP_CONNECTIONS     number of SSH connections, 1 to 16 (default 2). The
//	                            server handles the requests of one connection one at
//	                            a time, fsyncs included, so a second connection lets
//	                            one Save write while another syncs. Connections
//	                            beyond the first are opened on first use.
//	HOME, USER                  for the defaults above.
//
// # Host keys
//
// The server's host key is always checked against the known_hosts files
// (hashed entries, [host]:port entries, @cert-authority and @revoked lines
// are understood). Only the key types known_hosts lists for the host are
// negotiated, so that a server offering, say, ECDSA first is not rejected
// when only its Ed25519 key is known. An unknown host fails with the
// offered key's SHA256 fingerprint and the ssh-keyscan command that adds
// it; a host whose key differs from the known one fails with a warning
// that the connection may be intercepted. Both errors are permanent.
//
// # Layout and guarantees
//
//	config              the repository config
//	keys/NAME           key files
//	index/NAME          index files
//	snapshots/NAME      snapshots
//	sessions/NAME       writer sessions
//	maint/NAME          maintenance objects
//	packs/XX/NAME       packs, in subdirectories named by the first two
//	                    characters of NAME, made on first use
//
// Save writes a temporary file ".tmp-<random>" in the target directory,
// syncs it (fsync@openssh.com), closes it and renames it into place, then
// syncs the directory (fsync@openssh.com on the directory opened read-only)
// so that the object is either wholly there and durable or not there at
// all. Overwrites use posix-rename@openssh.com (an atomic rename(2));
// conditional creates (SaveOptions.IfNotExists) use a plain SFTP rename,
// which OpenSSH implements with link(2) and so refuses to replace an
// existing file: the create is atomic (on file systems without hard links
// OpenSSH falls back to a racy check-then-rename). A failed Save removes its
// temporary file when the connection still works; temporary files a lost
// connection or a crash left behind are never listed (List skips names
// starting with a dot) and may be deleted when they are old. Servers
// without fsync@openssh.com get no syncs: objects are then only as durable
// as the server's page cache.
//
// Load streams ranges with concurrent read requests. ModTime is the
// server's file modification time (whole seconds).
//
// # Errors and connections
//
// Errors name the location and the object and wrap the storage sentinels:
// a missing file is storage.ErrNotExist, permission denied is
// storage.ErrPermission, a refused login (or an encrypted key without a
// correct passphrase) is storage.ErrAuth, a full disk or quota is
// storage.ErrNoSpace when the server says so or statvfs@openssh.com shows
// no room after a failed write; a conditional create that finds the object
// is storage.ErrExists. Configuration, key file and host key problems are
// permanent. A broken connection (the server restarted, the network
// failed) fails the requests in flight with plain, retryable errors; the
// next request connects again. Connections send an SSH keepalive every 30
// seconds and are dropped when the server does not answer within 60.
// Nothing retries here: the retry decorator does.
package sftp
