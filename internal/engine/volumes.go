package engine

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
)

// volumeRecord is a local volume: a directory under $PETREL_HOME/volumes.
type volumeRecord struct {
	backend.VolumeStatus
}

// volumePath is the volume's directory. Names are DNS-1123 labels
// (validated by internal/spec), so they cannot contain '/' or '..'; the
// check here keeps that true for any caller.
func (e *Engine) volumePath(name string) string {
	return filepath.Join(e.cfg.Home, "volumes", filepath.Base(filepath.Clean("/"+name)))
}

// applyVolume creates a volume's directory and seeds it from spec.source
// the first time; an existing volume is left as it is (its data is the
// point of it). Caller holds e.mu.
func (e *Engine) applyVolume(ctx context.Context, v *v1alpha1.Volume, dir string) (string, error) {
	if _, ok := e.volumes[v.Metadata.Name]; ok {
		return "unchanged", nil
	}
	path := e.volumePath(v.Metadata.Name)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return "", fmt.Errorf("create volume %q: %w", v.Metadata.Name, err)
	}
	if v.Spec.Source != "" {
		src := v.Spec.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		if err := copyTree(src, path); err != nil {
			os.RemoveAll(path)
			return "", fmt.Errorf("seed volume %q from %s: %w", v.Metadata.Name, src, err)
		}
	}
	rec := &volumeRecord{backend.VolumeStatus{Name: v.Metadata.Name, Spec: v.Spec, Path: path, Phase: "Bound", CreationTime: time.Now()}}
	if err := e.store.putRecord(ctx, "volumes", rec.Name, rec); err != nil {
		return "", fmt.Errorf("record volume %q: %w", rec.Name, err)
	}
	e.volumes[rec.Name] = rec
	return "created", nil
}

// copyTree copies regular files and directories from src into dst;
// symbolic links and special files are skipped so a seed cannot point
// outside its directory.
func copyTree(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return copyFile(src, filepath.Join(dst, filepath.Base(src)))
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(p, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// deleteVolume removes a volume that no unfinished job and no service
// mounts (Kubernetes keeps a PVC in use by a pod: the
// kubernetes.io/pvc-protection finalizer). Caller holds e.mu.
func (e *Engine) deleteVolume(ctx context.Context, name string) error {
	if _, ok := e.volumes[name]; !ok {
		return fmt.Errorf("volume %q: %w", name, backend.ErrNotFound)
	}
	for _, r := range e.jobs {
		if r.Finished() {
			continue
		}
		for _, m := range r.Spec.Volumes {
			if m.Name == name {
				return fmt.Errorf("volume %q is in use by job %q: delete the job first (as Kubernetes keeps a PVC in use by a pod)", name, r.Name)
			}
		}
	}
	for svc, st := range e.services {
		for _, m := range st.rec.Spec.Volumes {
			if m.Name == name {
				return fmt.Errorf("volume %q is in use by service %q: delete the service first (as Kubernetes keeps a PVC in use by a pod)", name, svc)
			}
		}
	}
	if err := e.store.deleteRecord(ctx, "volumes", name); err != nil {
		return fmt.Errorf("delete volume %q: %w", name, err)
	}
	delete(e.volumes, name)
	return os.RemoveAll(e.volumePath(name))
}
