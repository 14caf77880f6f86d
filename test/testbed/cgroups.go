package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts returns the mount points of the cgroup hierarchies (v1
// controllers and, on a hybrid host, the unified one).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") && len(fields) > 4 {
				mounts = append(mounts, fields[4])
			}
		}
	}
	return mounts, sc.Err()
}

// createCgroupRoot makes the cgroup named root (e.g. "/regcred-node") in
// every hierarchy, for the kubelet's cgroupRoot: the kubelet refuses a
// root that does not exist, and everything it and runc create lives
// below it, so removing it removes all of the node's cgroups.
func createCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	for _, m := range mounts {
		dir := filepath.Join(m, root)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		// A v1 cpuset cgroup takes no task until it has cpus and mems.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			b, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil { //nolint:gosec // a cgroup of the node under a cgroup mount
				return fmt.Errorf("setting %s of cgroup %s: %w", f, dir, err)
			}
		}
	}
	return nil
}

// cgroupRootExists tells whether the cgroup root exists in any hierarchy.
func cgroupRootExists(root string) bool {
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, root)); err == nil {
			return true
		}
	}
	return false
}

// killCgroupRoot kills every process in the cgroup root, in every
// hierarchy.
func killCgroupRoot(root string) {
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		killCgroupProcs(filepath.Join(m, root))
	}
}

// removeCgroupRoot kills every process left in the cgroup root and
// removes its cgroups in every hierarchy, deepest first.
func removeCgroupRoot(root string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	killCgroupRoot(root)
	var errs []error
	for _, m := range mounts {
		dir := filepath.Join(m, root)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := rmdirRetry(dirs[i]); err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// killCgroupProcs sends SIGKILL to every process in dir and its children.
func killCgroupProcs(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, err := os.ReadFile(p) //nolint:gosec // cgroupfs, where no one makes symlinks
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// rmdirRetry removes an empty cgroup, waiting briefly for killed
// processes to leave it.
func rmdirRetry(dir string) error {
	var err error
	for range 50 {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
