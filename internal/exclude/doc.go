// Package exclude decides which paths a backup leaves out, with restic's
// rules, so exclude files written for restic keep working.
//
// # Patterns
//
// A pattern is a slash-separated list of components, each a path.Match
// glob (*, ?, [...], \ escapes), where the component ** matches any number
// (zero or more) of directories. Patterns are cleaned first (path.Clean),
// and a path is split into its components the same way.
//
//   - A pattern starting with "/" is anchored: it must match the first
//     components of the absolute path. "/home/*/.cache" excludes
//     /home/alice/.cache but not /srv/home/alice/.cache.
//   - Any other pattern may match at any depth: it matches when it matches
//     some consecutive components of the path. "*.o" excludes /src/a.o,
//     "cache/tmp" excludes /var/cache/tmp.
//   - A pattern that matches a directory matches everything below it too
//     (restic does the same: the matched components need not be the last
//     ones), so "node_modules" excludes /app/node_modules/x/y.js.
//   - A pattern starting with "!" is negated: a path it matches is included
//     again even though an earlier pattern excluded it. Later patterns win.
//     Because a backup does not descend into an excluded directory, a
//     negation cannot bring back entries below an excluded directory; to
//     keep /home/alice only, write "/home/*" and "!/home/alice".
//   - Extension: a pattern ending in "/" matches directories only (the
//     entries below them are excluded as usual), like in .gitignore.
//     restic drops the slash; the difference only means that a file with
//     such a name is kept.
//
// Case-insensitive patterns (Options.IPatterns, IPatternFiles) compare
// lower-cased pattern and path. They form a list of their own, as in
// restic: a path is excluded if either list excludes it, so a negation in
// one list cannot re-include what the other excludes.
//
// Pattern files hold one pattern per line; leading and trailing white
// space is trimmed, empty lines and lines starting with # are ignored.
// Unlike restic, $VARIABLES are not expanded: a line means what it says.
//
// # Marker files
//
// IfPresent entries have the form name[:header]. A directory containing an
// entry called name (and, when a header is given, a regular file starting
// with exactly those bytes) has its contents excluded. As in restic, the
// directory itself and the marker file are kept so that the snapshot shows
// why the rest is missing (see IsMarkerName). ExcludeCaches adds the
// marker CACHEDIR.TAG with the signature of the Cache Directory Tagging
// Specification (https://bford.info/cachedir/).
package exclude
