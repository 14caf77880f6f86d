package containerd

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempPrefix names the temporary files of atomic writes; one left by a
// crash is regcred's, and removed.
const tempPrefix = ".regcred-tmp-"

// fileMode and dirMode: containerd (root) reads them; a certificate and a
// hosts.toml without credentials are not secret.
const (
	fileMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o755
)

// maxRead bounds what is read of a file to compare it with what regcred
// would write: more than any file regcred writes.
const maxRead = 1 << 20

// ours reports whether path is a regular file that starts with Marker: a
// file regcred wrote. A symbolic link, a directory or a file it cannot
// read is not.
func ours(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, len(Marker))
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return string(head) == Marker
}

// sameContent reports whether path is a regular file holding exactly b.
func sameContent(path string, b []byte) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() != int64(len(b)) || st.Mode().Perm() != fileMode {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	got, err := io.ReadAll(io.LimitReader(f, maxRead))
	return err == nil && bytes.Equal(got, b)
}

// writeFiles writes a host's files: writeAtomic, but where a test makes
// a write fail.
var writeFiles = writeAtomic

// writeAtomic writes b to dir/name so that a reader sees the old file or
// the new one, never a part: into a temporary file beside it, synced,
// then renamed over it.
func writeAtomic(dir, name string, b []byte) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Chmod(fileMode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable; a failure only costs durability across
// a crash of the node, which the next reconcile repairs.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// removeOurs removes dir/name if regcred wrote it; it reports whether it
// did.
func removeOurs(dir, name string) (bool, error) {
	p := filepath.Join(dir, name)
	if !ours(p) {
		return false, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// removeTemps removes the temporary files a crashed write left in dir.
func removeTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
