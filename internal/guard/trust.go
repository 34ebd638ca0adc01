package guard

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// firstUserUID is where Debian and most distributions start login users'
// uids; system accounts (syslog, www-data) are below.
const firstUserUID = 1000

// UntrustedWriter says who besides root and system services can write the
// log file at path ("" when nobody): a file a local user can write lets
// that user put any line in it, and so get any address banned. A file that
// does not exist yet says nothing.
func UntrustedWriter(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return untrustedWriter(fi)
}

func untrustedWriter(fi fs.FileInfo) string {
	mode := fi.Mode().Perm()
	switch {
	case mode&0o002 != 0:
		return fmt.Sprintf("it is writable by every user (mode %04o)", mode)
	case mode&0o020 != 0:
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Gid >= firstUserUID {
			return fmt.Sprintf("it is writable by group %d (mode %04o), a users' group", st.Gid, mode)
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid >= firstUserUID {
		return fmt.Sprintf("it is owned by uid %d, a login user", st.Uid)
	}
	return ""
}
