package serverdb

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

// versionColumns are the columns scanVersion reads, without the manifest,
// from versions v joined with packages p.
const versionColumns = `p.package_id, v.version_id, v.name, v.version, v.location, v.content_key, v.size, v.sha256, v.added_at`

// versionsJoin joins versions with their packages.
const versionsJoin = ` FROM versions v JOIN packages p ON p.id = v.package `

// latestOrder orders a package's versions highest first (the versions_order
// index).
const latestOrder = `v.v_major DESC, v.v_minor DESC, v.v_build DESC, v.v_revision DESC, v.id DESC`

type scanner interface{ Scan(dest ...any) error }

func scanVersion(r scanner, manifest bool) (Version, error) {
	var (
		v     Version
		added int64
	)
	dest := []any{&v.PackageID, &v.VersionID, &v.Name, &v.Version, &v.Location, &v.ContentKey, &v.Size, &v.SHA256, &added}
	if manifest {
		dest = append(dest, &v.ManifestXML)
	}
	if err := r.Scan(dest...); err != nil {
		return Version{}, err
	}
	v.AddedAt = fromUnixNano(added)
	return v, nil
}

// guid checks a GUID argument and returns it in App-V's lower-case form.
func guid(what, s string) (string, error) {
	g, err := appvpkg.ParseGUID(s)
	if err != nil {
		return "", invalidf("%s %q is not a GUID", what, s)
	}
	return g, nil
}

func (s *store) CreateVersion(ctx context.Context, v Version) error {
	const op = "create version"
	vid, err := guid("VersionId", v.VersionID)
	if err != nil {
		return s.wrap(op, v.VersionID, err)
	}
	pid, err := guid("PackageId", v.PackageID)
	if err != nil {
		return s.wrap(op, vid, err)
	}
	parts, err := parseVersion(v.Version)
	if err != nil {
		return s.wrap(op, vid, err)
	}
	switch {
	case v.Location == "" && v.ContentKey == "":
		return s.wrap(op, vid, invalidf("neither a location nor a content key"))
	case v.Size < 0:
		return s.wrap(op, vid, invalidf("negative size"))
	}
	sum := strings.ToLower(v.SHA256)
	if b, err := hex.DecodeString(sum); sum != "" && (err != nil || len(b) != 32) {
		return s.wrap(op, vid, invalidf("SHA256 %q is not 64 hexadecimal digits", v.SHA256))
	}
	added := v.AddedAt
	if added.IsZero() {
		added = time.Now()
	}
	err = s.write(ctx, func(c conn) error {
		if found, err := c.exists(ctx, `SELECT 1 FROM versions WHERE version_id = ?`, vid); err != nil || found {
			return cmp.Or(err, conflictf("already exists"))
		}
		if _, err := c.exec(ctx, `INSERT INTO packages (package_id, name, created_at) VALUES (?, ?, ?)
			ON CONFLICT (package_id) DO NOTHING`, pid, v.Name, unixNano(added)); err != nil {
			return err
		}
		pkg, err := packageKey(ctx, c, pid)
		if err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO versions (version_id, package, name, version,
				v_major, v_minor, v_build, v_revision, location, content_key, size, sha256, manifest, added_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			vid, pkg, v.Name, v.Version, parts[0], parts[1], parts[2], parts[3],
			v.Location, v.ContentKey, v.Size, sum, v.ManifestXML, unixNano(added)); err != nil {
			return err
		}
		return setLatest(ctx, c, pkg)
	})
	return s.wrap(op, vid, err)
}

// packageKey returns a package's integer key; ErrNotFound if there is no
// such package.
func packageKey(ctx context.Context, c conn, packageID string) (int64, error) {
	var key int64
	err := c.row(ctx, `SELECT id FROM packages WHERE package_id = ?`, packageID).Scan(&key)
	if isNoRows(err) {
		return 0, notFoundf("no package %s", packageID)
	}
	return key, err
}

// setLatest records a package's latest version and takes its name.
func setLatest(ctx context.Context, c conn, pkg int64) error {
	var (
		latest *int64
		name   *string
	)
	err := c.row(ctx, `SELECT v.id, v.name FROM versions v WHERE v.package = ? ORDER BY `+latestOrder+` LIMIT 1`,
		pkg).Scan(&latest, &name)
	if err != nil && !isNoRows(err) {
		return err
	}
	_, err = c.exec(ctx, `UPDATE packages SET latest_version = ?, name = COALESCE(?, name) WHERE id = ?`,
		latest, name, pkg)
	return err
}

func (s *store) Packages(ctx context.Context) ([]PackageSummary, error) {
	const op = "list packages"
	var out []PackageSummary
	err := s.read(ctx, func(c conn) error {
		rows, err := c.query(ctx, `SELECT p.package_id, p.name, COALESCE(v.version_id, '')
			FROM packages p LEFT JOIN versions v ON v.id = p.latest_version`)
		if err != nil {
			return err
		}
		byID := map[string]int{}
		for rows.Next() {
			var p PackageSummary
			if err := rows.Scan(&p.PackageID, &p.Name, &p.LatestVersionID); err != nil {
				_ = rows.Close()
				return err
			}
			byID[p.PackageID] = len(out)
			out = append(out, p)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = c.query(ctx, `SELECT `+versionColumns+versionsJoin+`ORDER BY v.package, `+latestOrder)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVersion(rows, false)
			if err != nil {
				return err
			}
			if i, ok := byID[v.PackageID]; ok {
				out[i].Versions = append(out[i].Versions, v)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.wrap(op, "", err)
	}
	slices.SortFunc(out, func(a, b PackageSummary) int { return strings.Compare(a.PackageID, b.PackageID) })
	return out, nil
}

func (s *store) Version(ctx context.Context, versionID string) (Version, error) {
	const op = "get version"
	vid, err := guid("VersionId", versionID)
	if err != nil {
		return Version{}, s.wrap(op, versionID, err)
	}
	v, err := scanVersion(s.reader().row(ctx, `SELECT `+versionColumns+`, v.manifest`+versionsJoin+`WHERE v.version_id = ?`, vid), true)
	return v, s.wrap(op, vid, err)
}

func (s *store) LatestVersion(ctx context.Context, packageID string) (Version, error) {
	const op = "get latest version of"
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return Version{}, s.wrap(op, packageID, err)
	}
	v, err := scanVersion(s.reader().row(ctx, `SELECT `+versionColumns+`, v.manifest
		FROM packages p JOIN versions v ON v.id = p.latest_version WHERE p.package_id = ?`, pid), true)
	return v, s.wrap(op, pid, err)
}

func (s *store) RemoveVersion(ctx context.Context, versionID string) (Version, error) {
	const op = "remove version"
	vid, err := guid("VersionId", versionID)
	if err != nil {
		return Version{}, s.wrap(op, versionID, err)
	}
	var v Version
	err = s.write(ctx, func(c conn) error {
		var err error
		v, err = scanVersion(c.row(ctx, `SELECT `+versionColumns+`, v.manifest`+versionsJoin+`WHERE v.version_id = ?`, vid), true)
		if err != nil {
			return err
		}
		pkg, err := packageKey(ctx, c, v.PackageID)
		if err != nil {
			return err
		}
		var group string
		err = c.row(ctx, `SELECT group_id FROM connection_group_members WHERE version_id = ? LIMIT 1`, vid).Scan(&group)
		switch {
		case err == nil:
			return conflictf("connection group %s pins it", group)
		case !isNoRows(err):
			return err
		}
		if _, err := c.exec(ctx, `DELETE FROM versions WHERE version_id = ?`, vid); err != nil {
			return err
		}
		return setLatest(ctx, c, pkg)
	})
	if err != nil {
		return Version{}, s.wrap(op, vid, err)
	}
	return v, nil
}

func (s *store) RemovePackage(ctx context.Context, packageID string) ([]Version, error) {
	const op = "remove package"
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return nil, s.wrap(op, packageID, err)
	}
	var removed []Version
	err = s.write(ctx, func(c conn) error {
		pkg, err := packageKey(ctx, c, pid)
		if err != nil {
			return err
		}
		var group string
		err = c.row(ctx, `SELECT group_id FROM connection_group_members WHERE package_id = ? LIMIT 1`, pid).Scan(&group)
		switch {
		case err == nil:
			return conflictf("it is a member of connection group %s", group)
		case !isNoRows(err):
			return err
		}
		rows, err := c.query(ctx, `SELECT `+versionColumns+versionsJoin+`WHERE v.package = ? ORDER BY `+latestOrder, pkg)
		if err != nil {
			return err
		}
		for rows.Next() {
			v, err := scanVersion(rows, false)
			if err != nil {
				_ = rows.Close()
				return err
			}
			removed = append(removed, v)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = c.exec(ctx, `DELETE FROM packages WHERE id = ?`, pkg)
		return err
	})
	if err != nil {
		return nil, s.wrap(op, pid, err)
	}
	return removed, nil
}
