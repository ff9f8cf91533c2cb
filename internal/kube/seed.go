package kube

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/spec"
)

// Seeding a Volume from its local source directory on Kubernetes.
//
// A PersistentVolumeClaim is created empty. For a small source (at most
// SeedLimit bytes in all, which fits a ConfigMap's 1 MiB cap) petrel renders
// the files into a ConfigMap named VOLUME-seed and gives every pod that
// mounts the volume an init container that copies them into the claim once
// (it leaves a marker file, SeedMarker, so later pods and retries keep what
// the workload wrote). Larger sources are not copied: a note says so, and
// the data must be put on the claim another way (kubectl cp into a pod that
// mounts it, or a pre-populated volume).

// SeedLimit is the largest source, in bytes, seeded through a ConfigMap.
const SeedLimit = 900 << 10

// SeedImage is the image of the seed init container (it needs sh, mkdir, cp
// and touch).
const SeedImage = "busybox:1.37"

// SeedMarker is the file the seed init container leaves in the volume.
const SeedMarker = ".petrel-seeded"

type seedData struct {
	configMap string
	items     []corev1.KeyToPath
	script    string
}

var invalidKeyChars = regexp.MustCompile(`[^-._a-zA-Z0-9]`)

// seed reads the volume's source directory into a ConfigMap.
func (r *renderer) seed(d *spec.Document, v *v1alpha1.Volume, om metav1.ObjectMeta, info *volumeInfo) {
	src := v.Spec.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(d.Dir, src)
	}
	var files []string
	var total int64
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		r.fail(d, "spec.source", "point source at a directory next to the spec file, or leave it out",
			"cannot read volume source %s: %v", src, err)
		return
	}
	if total > SeedLimit {
		r.note("Volume %s: source %s holds %d bytes, more than the %d a ConfigMap can carry; the claim is created empty: copy the data in with kubectl cp into a pod that mounts it.",
			v.Metadata.Name, v.Spec.Source, total, SeedLimit)
		return
	}
	sort.Strings(files)
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: om,
		BinaryData: map[string][]byte{},
	}
	cm.Name = v.Metadata.Name + "-seed"
	sd := &seedData{configMap: cm.Name}
	var script strings.Builder
	fmt.Fprintf(&script, "set -e\nif [ -e /petrel-volume/%s ]; then exit 0; fi\n", SeedMarker)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			r.fail(d, "spec.source", "make the source files readable", "cannot read volume source file: %v", err)
			return
		}
		rel, _ := filepath.Rel(src, f)
		rel = filepath.ToSlash(rel)
		key := invalidKeyChars.ReplaceAllString(rel, "_")
		for i := 2; cm.BinaryData[key] != nil; i++ {
			key = fmt.Sprintf("%s-%d", invalidKeyChars.ReplaceAllString(rel, "_"), i)
		}
		cm.BinaryData[key] = data
		sd.items = append(sd.items, corev1.KeyToPath{Key: key, Path: rel})
		fmt.Fprintf(&script, "mkdir -p %s && cp %s %s\n",
			shellQuote(parentDir("/petrel-volume/"+rel)), shellQuote("/petrel-seed/"+rel), shellQuote("/petrel-volume/"+rel))
	}
	fmt.Fprintf(&script, "touch /petrel-volume/%s\n", SeedMarker)
	sd.script = script.String()
	info.seed = sd
	r.add(cm)
	r.note("Volume %s is seeded from %s through ConfigMap %s by an init container (%s) in each pod that mounts it, once.",
		v.Metadata.Name, v.Spec.Source, cm.Name, SeedImage)
}

func parentDir(p string) string { return p[:strings.LastIndex(p, "/")] }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// addTo adds the seed ConfigMap volume and init container to a pod that
// mounts the claim as pod volume volName.
func (sd *seedData) addTo(ps *corev1.PodSpec, volName string) {
	seedVol := truncate("petrel-seed-"+volName, 63)
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: seedVol, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: sd.configMap}, Items: sd.items},
	}})
	ps.InitContainers = append(ps.InitContainers, corev1.Container{
		Name:    seedVol,
		Image:   SeedImage,
		Command: []string{"sh", "-c", sd.script},
		VolumeMounts: []corev1.VolumeMount{
			{Name: seedVol, MountPath: "/petrel-seed", ReadOnly: true},
			{Name: volName, MountPath: "/petrel-volume"},
		},
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-")
}
