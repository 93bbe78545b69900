package source

import (
	"fmt"
	"os/user"
	"strconv"
)

// LookupUser returns the numeric user ID and primary group ID of the
// local account name, for running a program as it or giving it files.
func LookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %s has no numeric IDs (%s:%s)", name, u.Uid, u.Gid)
	}
	return uid, gid, nil
}
