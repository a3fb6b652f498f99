package playbooks

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/triggers"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// File is one playbook file's content and where it came from.
type File struct {
	// Path is shown in errors: a path on disk, "builtin:x.yaml", or
	// "repo@commit:path" for Git sources.
	Path    string
	Data    []byte
	Builtin bool
	// Origin is the Git repository and commit the file came from; zero for
	// local folders and built-in playbooks.
	Origin Origin
}

// Set is an immutable, validated collection of playbooks. The engine reads
// one Set for the whole of an event, so a reload never splits an event
// between two versions.
type Set struct {
	Playbooks []*Playbook
	// Version identifies the content: a hash of every file, or what a Git
	// source says (repo@commit).
	Version string
	// Files lists the files the set was built from.
	Files []string
	// Sources lists the Git repositories and commits in the set, by name.
	Sources []Origin
}

// Options shape how files become a Set.
type Options struct {
	// Plugins are the registries the playbooks' triggers and actions are
	// built from; required.
	Plugins Plugins
	// Disabled names playbooks to drop.
	Disabled []string
	// KnownSinks, when not nil, is checked against every playbook's sinks.
	KnownSinks []string
	// Remediation is the operator's policy: a playbook naming a
	// remediation action it does not allow is an error. The zero value
	// allows none (read-only).
	Remediation actions.Remediation
}

// BuiltinFiles returns the playbooks embedded in the binary.
func BuiltinFiles() ([]File, error) {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		return nil, fmt.Errorf("read built-in playbooks: %w", err)
	}
	var files []File
	for _, e := range entries {
		data, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read built-in playbook %s: %w", e.Name(), err)
		}
		files = append(files, File{Path: "builtin:" + e.Name(), Data: data, Builtin: true})
	}
	return files, nil
}

// ReadDir reads every .yaml/.yml file under dir, recursively, in path order,
// skipping hidden files and folders, and folders named testdata or builtin:
// in medic's own source tree ./playbooks is both the Go package and the
// default playbook folder, and its builtin/ files are already embedded.
// Folders named tests hold playbook test fixtures (`medic playbooks test`).
func ReadDir(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if path != dir && d.IsDir() && skipDir(name) {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, File{Path: path, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read playbooks from %s: %w", dir, err)
	}
	return files, nil
}

// Build parses and validates files into a Set. It returns Errors listing
// every problem in every file; a Set is returned only when there are none.
// User playbooks run before built-in ones so that `stop` in a user playbook
// can silence a built-in; a user playbook named like a built-in replaces it.
func Build(files []File, opts Options) (*Set, error) {
	if opts.Plugins.Actions == nil {
		return nil, errors.New("playbooks: Options.Plugins.Actions is nil: pass the binary's registries (internal/plugins.Builtin)")
	}
	var (
		errs     Errors
		user     []*Playbook
		builtins []*Playbook
		names    = map[string]*Playbook{}
	)
	sorted := slices.Clone(files)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		pbs, ferrs := parseFile(f.Path, f.Data, f.Builtin, opts.Plugins)
		errs = append(errs, ferrs...)
		for _, pb := range pbs {
			pb.Origin = f.Origin
			if prev, dup := names[pb.Name]; dup && !prev.Builtin && !pb.Builtin {
				errs = append(errs, Error{File: pb.File, Line: pb.Line,
					Msg: fmt.Sprintf("playbook name %q is already used at %s", pb.Name, prev.Location())})
				continue
			}
			if !pb.Builtin {
				names[pb.Name] = pb
			} else if _, ok := names[pb.Name]; !ok {
				names[pb.Name] = pb
			}
			if pb.Builtin {
				builtins = append(builtins, pb)
			} else {
				user = append(user, pb)
			}
		}
	}
	// A user playbook with a built-in's name replaces it.
	builtins = slices.DeleteFunc(builtins, func(b *Playbook) bool { return names[b.Name] != b })

	all := append(user, builtins...)
	for _, name := range opts.Disabled {
		if _, ok := names[name]; !ok {
			errs = append(errs, Error{File: "config", Msg: fmt.Sprintf("playbooks.disabled names %q, which no playbook is called", name)})
		}
	}
	all = slices.DeleteFunc(all, func(p *Playbook) bool { return slices.Contains(opts.Disabled, p.Name) })
	if opts.KnownSinks != nil {
		errs = append(errs, checkSinks(all, opts.KnownSinks)...)
	}
	errs = append(errs, checkRemediation(all, opts.Remediation)...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].File != errs[j].File {
				return errs[i].File < errs[j].File
			}
			return errs[i].Line < errs[j].Line
		})
		return nil, errs
	}
	paths := make([]string, len(sorted))
	for i, f := range sorted {
		paths[i] = f.Path
	}
	return &Set{
		Playbooks: all,
		Version:   versionOf(files),
		Files:     paths,
		Sources:   originsOf(files),
	}, nil
}

// Names lists the playbooks in run order.
func (s *Set) Names() []string {
	out := make([]string, len(s.Playbooks))
	for i, p := range s.Playbooks {
		out[i] = p.Name
	}
	return out
}

// Triggers lists the triggers of every playbook, in run order.
func (s *Set) Triggers() []triggers.Trigger {
	var out []triggers.Trigger
	for _, p := range s.Playbooks {
		for _, t := range p.Triggers {
			out = append(out, t.Trigger)
		}
	}
	return out
}

// LoadLocal reads the built-in playbooks (when builtin is set) and every
// folder in dirs; a folder that does not exist is reported in missing, not
// as an error, so the default ./playbooks may be absent.
func LoadLocal(dirs []string, builtin bool) (files []File, missing []string, err error) {
	if builtin {
		files, err = BuiltinFiles()
		if err != nil {
			return nil, nil, err
		}
	}
	for _, d := range dirs {
		if _, serr := os.Stat(d); errors.Is(serr, fs.ErrNotExist) {
			missing = append(missing, d)
			continue
		}
		fs, err := ReadDir(d)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
	}
	return files, missing, nil
}
