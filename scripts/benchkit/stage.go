package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// srcFile is one staged capture: random bytes (incompressible, like JPEG
// and video), written once and reused by every run.
type srcFile struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	Sum  string `json:"sha256"`
}

// fileSet describes a set of staged files.
type fileSet struct {
	Tag     string // folder name, e.g. "img"
	Prefix  string // file name prefix, e.g. "IMG_"
	Ext     string // ".JPG"
	N       int
	Min     int64
	Max     int64
	Seed    uint64
	Files   []srcFile
	Total   int64
	dirPath string
}

// stage writes the set under dir (or reuses what an earlier run wrote with
// the same parameters) and fills Files and Total.
func (fs *fileSet) stage(dir string) error {
	fs.dirPath = filepath.Join(dir, fmt.Sprintf("%s-%d-%d-%d-%d", fs.Tag, fs.N, fs.Min, fs.Max, fs.Seed))
	manifest := filepath.Join(fs.dirPath, "manifest.json")
	if b, err := os.ReadFile(manifest); err == nil {
		var files []srcFile
		if json.Unmarshal(b, &files) == nil && len(files) == fs.N && fs.intact(files) {
			fs.set(files)
			return nil
		}
	}
	if err := os.RemoveAll(fs.dirPath); err != nil {
		return err
	}
	if err := os.MkdirAll(fs.dirPath, 0o755); err != nil {
		return err
	}
	sizes := rand.New(rand.NewPCG(fs.Seed, 1))
	files := make([]srcFile, fs.N)
	var seed [32]byte
	for i := range files {
		size := fs.Min
		if fs.Max > fs.Min {
			size += sizes.Int64N(fs.Max - fs.Min + 1)
		}
		name := fmt.Sprintf("%s%04d%s", fs.Prefix, i+1, fs.Ext)
		p := filepath.Join(fs.dirPath, name)
		seed[0], seed[1], seed[2], seed[3] = byte(i), byte(i>>8), byte(fs.Seed), byte(fs.Seed>>8)
		sum, err := writeRandom(p, size, rand.NewChaCha8(seed))
		if err != nil {
			return fmt.Errorf("staging %s: %w", p, err)
		}
		files[i] = srcFile{Name: name, Path: p, Size: size, Sum: sum}
	}
	b, _ := json.MarshalIndent(files, "", " ")
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		return err
	}
	fs.set(files)
	return nil
}

func (fs *fileSet) set(files []srcFile) {
	fs.Files = files
	fs.Total = 0
	for _, f := range files {
		fs.Total += f.Size
	}
}

func (fs *fileSet) intact(files []srcFile) bool {
	for _, f := range files {
		st, err := os.Stat(f.Path)
		if err != nil || st.Size() != f.Size {
			return false
		}
	}
	return true
}

func writeRandom(p string, size int64, src io.Reader) (string, error) {
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, src, size); err != nil {
		f.Close()
		return "", err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// drop puts files into dir the way a camera's finished captures appear: a
// hard link to the staged file (instant, no copy), with a fresh mtime.
func drop(dir string, files []srcFile) ([]string, error) {
	now := time.Now()
	paths := make([]string, len(files))
	for i, f := range files {
		if err := os.Chtimes(f.Path, now, now); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, f.Name)
		if err := os.Link(f.Path, p); err != nil {
			return nil, fmt.Errorf("dropping %s: %w", f.Name, err)
		}
		paths[i] = p
	}
	return paths, nil
}

// clearDir removes everything inside dir.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// verify checks the server's copies against the staged hashes (size always,
// content when full is set). Files are found by base name under root.
func verify(root string, files []srcFile, full bool) error {
	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found[d.Name()] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range files {
		p, ok := found[f.Name]
		if !ok {
			return fmt.Errorf("%s is missing on the server", f.Name)
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Size() != f.Size {
			return fmt.Errorf("%s: %d bytes on the server, %d sent", f.Name, st.Size(), f.Size)
		}
		if !full {
			continue
		}
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.Sum {
			return fmt.Errorf("%s: content differs on the server (sha256 %s, sent %s)", f.Name, got[:12], f.Sum[:12])
		}
	}
	return nil
}
