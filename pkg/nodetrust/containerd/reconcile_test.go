package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/nodetrust"
)

// tree returns every file under root and its content, and every
// directory (with a trailing /).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = string(b)
		}
		return nil
	}))
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func TestReconcileWritesAndRemoves(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ca := testCA(t)
	harbor := nodetrust.Host{Host: "harbor:8443", CA: ca, Registries: []string{"harbor"}}
	plain := nodetrust.Host{Host: "10.0.0.5:5000", PlainHTTP: true, Registries: []string{"plain"}}
	lab := nodetrust.Host{Host: "lab.example.com", SkipVerify: true, Registries: []string{"lab"}}

	res := d.Reconcile([]nodetrust.Host{harbor, plain, lab}, nil)
	assert.Empty(t, res.Errors)
	assert.Empty(t, res.Conflicts)
	assert.ElementsMatch(t, []string{"harbor:8443", "10.0.0.5:5000", "lab.example.com"}, res.Written)
	assert.Equal(t, map[string]nodetrust.Mode{"harbor:8443": nodetrust.ModeCA, "10.0.0.5:5000": nodetrust.ModePlainHTTP, "lab.example.com": nodetrust.ModeSkipVerify}, res.Applied)
	hh, hca := Render(harbor)
	ph, _ := Render(plain)
	lh, _ := Render(lab)
	assert.Equal(t, map[string]string{
		"harbor:8443/": "", "harbor:8443/hosts.toml": string(hh), "harbor:8443/regcred-ca.crt": string(hca),
		"10.0.0.5:5000/": "", "10.0.0.5:5000/hosts.toml": string(ph),
		"lab.example.com/": "", "lab.example.com/hosts.toml": string(lh),
	}, tree(t, root))
	st, err := os.Stat(filepath.Join(root, "harbor:8443", HostsFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	t.Run("again: nothing written", func(t *testing.T) {
		before := tree(t, root)
		res := d.Reconcile([]nodetrust.Host{harbor, plain, lab}, nil)
		assert.Empty(t, res.Written)
		assert.Empty(t, res.Removed)
		assert.Len(t, res.Applied, 3)
		assert.Equal(t, before, tree(t, root))
	})

	t.Run("a file edited by hand is written again", func(t *testing.T) {
		p := filepath.Join(root, "lab.example.com", HostsFile)
		write(t, p, Marker+"\nserver = \"https://evil.example.com\"\n")
		res := d.Reconcile([]nodetrust.Host{harbor, plain, lab}, nil)
		assert.Equal(t, []string{"lab.example.com"}, res.Written)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, string(lh), string(b))
	})

	t.Run("a mode change: the CA goes with it", func(t *testing.T) {
		insecure := nodetrust.Host{Host: "harbor:8443", SkipVerify: true, Registries: []string{"harbor"}}
		res := d.Reconcile([]nodetrust.Host{insecure, plain, lab}, nil)
		assert.Equal(t, []string{"harbor:8443"}, res.Written)
		ih, _ := Render(insecure)
		got := tree(t, root)
		assert.Equal(t, string(ih), got["harbor:8443/hosts.toml"])
		assert.NotContains(t, got, "harbor:8443/regcred-ca.crt")
	})

	t.Run("registries gone: their files and directories go", func(t *testing.T) {
		res := d.Reconcile([]nodetrust.Host{plain}, nil)
		assert.Empty(t, res.Errors)
		assert.ElementsMatch(t, []string{"harbor:8443", "lab.example.com"}, res.Removed)
		assert.Equal(t, map[string]string{"10.0.0.5:5000/": "", "10.0.0.5:5000/hosts.toml": string(ph)}, tree(t, root))
		res = d.Reconcile(nil, nil)
		assert.Equal(t, []string{"10.0.0.5:5000"}, res.Removed)
		assert.Empty(t, tree(t, root))
	})
}

// Files regcred did not write are never changed nor removed, whatever is
// wanted; the hosts they configure are reported as conflicts.
func TestReconcileNeverTouchesForeignFiles(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ca := testCA(t)
	admin := map[string]string{
		// An admin's own hosts.toml for a host regcred is asked for.
		"harbor:8443/hosts.toml": "server = \"https://harbor:8443\"\nca = \"/etc/ssl/harbor.pem\"\n",
		// The Docker layout: a CA without hosts.toml, which a hosts.toml
		// would make containerd ignore.
		"legacy.example.com/ca.crt": ca,
		// containerd 2 reads host_port_ before host:port.
		"reg_5000_/hosts.toml": "server = \"http://reg:5000\"\n",
		// Hosts regcred is not asked for, and containerd's default.
		"other.example.com/hosts.toml": "server = \"https://other.example.com\"\n",
		"_default/hosts.toml":          "server = \"https://mirror.example.com\"\n",
		"readme.txt":                   "an admin's notes\n",
	}
	for p, c := range admin {
		write(t, filepath.Join(root, p), c)
	}
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "linked.example.com")))
	write(t, filepath.Join(root, "file.example.com"), "a file, not a directory\n")
	before := tree(t, root)
	mtimes := map[string]time.Time{}
	for p := range admin {
		st, err := os.Stat(filepath.Join(root, p))
		require.NoError(t, err)
		mtimes[p] = st.ModTime()
	}

	want := []nodetrust.Host{
		{Host: "harbor:8443", CA: ca, Registries: []string{"harbor"}},
		{Host: "legacy.example.com", CA: ca, Registries: []string{"legacy"}},
		{Host: "reg:5000", PlainHTTP: true, Registries: []string{"reg"}},
		{Host: "linked.example.com", SkipVerify: true, Registries: []string{"linked"}},
		{Host: "file.example.com", SkipVerify: true, Registries: []string{"file"}},
	}
	for range 2 {
		res := d.Reconcile(want, nil)
		assert.Empty(t, res.Errors)
		assert.Empty(t, res.Written)
		assert.Empty(t, res.Removed)
		assert.Empty(t, res.Applied)
		reasons := map[string]string{}
		for _, c := range res.Conflicts {
			reasons[c.Host] = c.Reason
		}
		assert.Equal(t, map[string]string{
			"harbor:8443":        "hosts.toml is not regcred's",
			"legacy.example.com": "it holds files that are not regcred's (ca.crt), which containerd reads when there is no hosts.toml",
			"reg:5000":           "containerd reads reg_5000_/ before reg:5000/, and it is not regcred's",
			"linked.example.com": "linked.example.com is not a directory",
			"file.example.com":   "file.example.com is not a directory",
		}, reasons)
		assert.Equal(t, before, tree(t, root), "nothing of the admin's changed")
	}
	// Nothing wanted: still nothing of the admin's goes.
	res := d.Reconcile(nil, nil)
	assert.Empty(t, res.Removed)
	assert.Empty(t, res.Errors)
	assert.Equal(t, before, tree(t, root))
	for p, m := range mtimes {
		st, err := os.Stat(filepath.Join(root, p))
		require.NoError(t, err)
		assert.Equal(t, m, st.ModTime(), "%s was not rewritten", p)
	}
}

// What an admin adds to a directory of regcred's stays when regcred's
// files go, and so does the directory; a hosts.toml the admin took over
// (its marker line deleted) keeps regcred's CA, which it may name.
func TestReconcileRemovesOnlyItsOwn(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ca := testCA(t)
	a := nodetrust.Host{Host: "a.example.com", CA: ca, Registries: []string{"a"}}
	b := nodetrust.Host{Host: "b.example.com", CA: ca, Registries: []string{"b"}}
	res := d.Reconcile([]nodetrust.Host{a, b}, nil)
	require.Empty(t, res.Errors)
	write(t, filepath.Join(root, "a.example.com", "client.cert"), "an admin's client certificate\n")
	taken, err := os.ReadFile(filepath.Join(root, "b.example.com", HostsFile))
	require.NoError(t, err)
	_, rest, _ := strings.Cut(string(taken), "\n")
	write(t, filepath.Join(root, "b.example.com", HostsFile), rest)

	res = d.Reconcile(nil, nil)
	assert.Equal(t, []string{"a.example.com"}, res.Removed)
	_, aca := Render(a)
	assert.Equal(t, map[string]string{
		"a.example.com/": "", "a.example.com/client.cert": "an admin's client certificate\n",
		"b.example.com/": "", "b.example.com/hosts.toml": rest, "b.example.com/regcred-ca.crt": string(aca),
	}, tree(t, root))

	// Asked for again, b is a conflict; a's directory, holding regcred's
	// files no more but the admin's client.cert, is too (a hosts.toml
	// would make containerd ignore it).
	res = d.Reconcile([]nodetrust.Host{a, b}, nil)
	assert.ElementsMatch(t, []Conflict{
		{Host: "a.example.com", Reason: "it holds files that are not regcred's (client.cert), which containerd reads when there is no hosts.toml"},
		{Host: "b.example.com", Reason: "hosts.toml is not regcred's"},
	}, res.Conflicts)
}

// A host whose published entry is invalid keeps its files: what it should
// be is unknown.
func TestReconcileKeeps(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	h := nodetrust.Host{Host: "reg:5000", PlainHTTP: true, Registries: []string{"reg"}}
	require.Empty(t, d.Reconcile([]nodetrust.Host{h}, nil).Errors)
	before := tree(t, root)
	res := d.Reconcile(nil, []string{"reg:5000"})
	assert.Empty(t, res.Removed)
	assert.Equal(t, before, tree(t, root))

	// An entry that did not go through Decode is checked again.
	bad := nodetrust.Host{Host: "reg:5000", Registries: []string{"reg"}}
	res = d.Reconcile([]nodetrust.Host{bad}, nil)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0].Error(), "host reg:5000: nothing to trust")
	assert.Equal(t, before, tree(t, root), "kept as it was")
}

// What a crash leaves (a temporary file, a CA written before its
// hosts.toml) is regcred's and is cleaned up.
func TestReconcileAfterACrash(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ca := testCA(t)
	h := nodetrust.Host{Host: "reg.example.com", CA: ca, Registries: []string{"reg"}}
	_, caFile := Render(h)
	write(t, filepath.Join(root, "reg.example.com", CAFile), string(caFile))
	write(t, filepath.Join(root, "reg.example.com", tempPrefix+"123"), "half a file")
	res := d.Reconcile([]nodetrust.Host{h}, nil)
	assert.Empty(t, res.Conflicts)
	assert.Equal(t, []string{"reg.example.com"}, res.Written)
	hosts, _ := Render(h)
	assert.Equal(t, map[string]string{"reg.example.com/": "", "reg.example.com/hosts.toml": string(hosts), "reg.example.com/regcred-ca.crt": string(caFile)}, tree(t, root))

	write(t, filepath.Join(root, "gone.example.com", CAFile), string(caFile))
	write(t, filepath.Join(root, "gone.example.com", tempPrefix+"456"), "half a file")
	res = d.Reconcile([]nodetrust.Host{h}, nil)
	assert.Equal(t, []string{"gone.example.com"}, res.Removed)
	assert.NotContains(t, tree(t, root), "gone.example.com/")
}

// A write cut short before its first rename (a crash, a full disk) leaves
// a host directory holding only regcred's temporary files, which hides
// _default/ from containerd for that host: once the host is no longer
// wanted, it goes. A directory that a failed first write made goes at
// once. An empty directory may be anyone's: it stays.
func TestReconcileRemovesWhatAWriteCutShortLeft(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	write(t, filepath.Join(root, DefaultsDirectory, HostsFile), "server = \"https://mirror.internal\"\n")
	write(t, filepath.Join(root, "cut.example.com", tempPrefix+"123"), "half a file")
	require.NoError(t, os.Mkdir(filepath.Join(root, "empty.example.com"), 0o755))
	res := d.Reconcile(nil, nil)
	assert.Empty(t, res.Errors)
	assert.Equal(t, []string{"cut.example.com"}, res.Removed)
	assert.NotContains(t, tree(t, root), "cut.example.com/")
	assert.Contains(t, tree(t, root), "empty.example.com/")

	// A first write that fails: the directory it made goes with it.
	full := errors.New("no space left on device")
	writeFiles = func(string, string, []byte) error { return full }
	t.Cleanup(func() { writeFiles = writeAtomic })
	h := nodetrust.Host{Host: "new.example.com", SkipVerify: true, Registries: []string{"new"}}
	res = d.Reconcile([]nodetrust.Host{h}, nil)
	require.Len(t, res.Errors, 1)
	assert.ErrorIs(t, res.Errors[0].Err, full)
	assert.NotContains(t, tree(t, root), "new.example.com/")

	// The CA written, the hosts.toml not: the CA goes too.
	writeFiles = func(dir, name string, b []byte) error {
		if name == CAFile {
			return writeAtomic(dir, name, b)
		}
		return full
	}
	withCA := nodetrust.Host{Host: "ca.example.com", CA: testCA(t), Registries: []string{"ca"}}
	res = d.Reconcile([]nodetrust.Host{withCA}, nil)
	require.Len(t, res.Errors, 1)
	assert.NotContains(t, tree(t, root), "ca.example.com/")
}

func TestReconcileWithoutTheDirectory(t *testing.T) {
	for _, root := range []string{filepath.Join(t.TempDir(), "missing"), "/dev/null"} {
		res := Dir{Root: root}.Reconcile([]nodetrust.Host{{Host: "reg:5000", PlainHTTP: true}}, nil)
		require.Len(t, res.Errors, 1)
		assert.Contains(t, res.Errors[0].Error(), "containerd's registry config directory "+root)
		assert.Empty(t, res.Applied)
	}
}

// A reader of hosts.toml (containerd, at every pull) sees a whole file,
// the old or the new, never a part, while it is rewritten.
func TestReconcileIsAtomic(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	ca := testCA(t)
	versions := []nodetrust.Host{
		{Host: "reg.example.com", CA: ca, Registries: []string{"a"}},
		{Host: "reg.example.com", SkipVerify: true, Registries: []string{"a", "b"}},
		{Host: "reg.example.com", PlainHTTP: true, CA: ca, Registries: []string{"a", "b", "c"}},
	}
	whole := map[string]bool{}
	for _, v := range versions {
		h, _ := Render(v)
		whole[string(h)] = true
	}
	require.Empty(t, d.Reconcile(versions[:1], nil).Errors)
	p := filepath.Join(root, "reg.example.com", HostsFile)
	var stop atomic.Bool
	var reads, torn atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			b, err := os.ReadFile(p)
			if err != nil {
				torn.Add(1)
				continue
			}
			reads.Add(1)
			if !whole[string(b)] {
				torn.Add(1)
			}
		}
	})
	for i := range 300 {
		res := d.Reconcile([]nodetrust.Host{versions[i%len(versions)]}, nil)
		require.Empty(t, res.Errors)
	}
	stop.Store(true)
	wg.Wait()
	assert.Positive(t, reads.Load())
	assert.Zero(t, torn.Load(), "reads of a missing or partial hosts.toml, out of %d", reads.Load())
	entries, err := os.ReadDir(filepath.Join(root, "reg.example.com"))
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	assert.Equal(t, []string{HostsFile, CAFile}, names, "no temporary file left")
}

// Whatever the entry, Reconcile never panics and never writes outside
// its directory.
func FuzzReconcile(f *testing.F) {
	ca := testCA(f)
	f.Add("reg:5000", true, false, "", "reg")
	f.Add("../escape", false, true, "", "x")
	f.Add("harbor.example.com", false, false, ca, "h")
	f.Add("[fd00::1]:5000", false, true, "", "v6")
	f.Add("a/b", true, false, "", "a")
	f.Add("_default", true, false, "", "d")
	f.Add("reg:5000", true, false, "", "a\nserver = \"https://evil\"")
	f.Fuzz(func(t *testing.T, host string, plain, skip bool, caPEM, name string) {
		parent := t.TempDir()
		root := filepath.Join(parent, "certs.d")
		require.NoError(t, os.Mkdir(root, 0o755))
		h := nodetrust.Host{Host: host, PlainHTTP: plain, SkipVerify: skip, CA: caPEM, Registries: []string{name}}
		res := Dir{Root: root}.Reconcile([]nodetrust.Host{h}, []string{host})
		entries, err := os.ReadDir(parent)
		require.NoError(t, err)
		if len(entries) != 1 {
			t.Fatalf("wrote outside the directory: %v", entries)
		}
		written := tree(t, root)
		if h.Validate() != nil {
			if len(written) > 0 || len(res.Errors) != 1 {
				t.Fatalf("an invalid entry %+v: wrote %v, errors %v", h, written, res.Errors)
			}
			return
		}
		if _, ok := written[host+"/"+HostsFile]; !ok && len(res.Errors) == 0 {
			t.Fatalf("a valid entry %q was not written: %v", host, fmt.Sprint(res))
		}
	})
}

// containerd reads a host's own directory instead of _default/: an admin's
// defaults (a mirror, a proxy's CA) no longer apply to a host regcred
// writes. It is written all the same, as asked, and the note says so.
func TestReconcileNotesTheDefaultsItShadows(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	lab := nodetrust.Host{Host: "lab.example.com", SkipVerify: true, Registries: []string{"lab"}}
	res := d.Reconcile([]nodetrust.Host{lab}, nil)
	assert.Empty(t, res.Notes, "no _default/")

	write(t, filepath.Join(root, "_default", "hosts.toml"), "[host.\"https://mirror.internal\"]\n")
	res = d.Reconcile([]nodetrust.Host{lab}, nil)
	assert.Equal(t, nodetrust.ModeSkipVerify, res.Applied["lab.example.com"])
	require.Len(t, res.Notes, 1)
	assert.Equal(t, "lab.example.com", res.Notes[0].Host)
	assert.Contains(t, res.Notes[0].Reason, "_default/")
	assert.Equal(t, "[host.\"https://mirror.internal\"]\n", tree(t, root)["_default/hosts.toml"], "left as it was")
}
