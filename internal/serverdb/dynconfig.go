package serverdb

import (
	"context"
	"time"
)

// maxConfig bounds a dynamic configuration file.
const maxConfig = 4 << 20

func checkConfigKind(kind string) error {
	if kind != ConfigDeployment && kind != ConfigUser {
		return invalidf("dynamic configuration kind %q is not %q or %q", kind, ConfigDeployment, ConfigUser)
	}
	return nil
}

func configObj(packageID string, identityID int64, kind string) string {
	if identityID == 0 {
		return kind + " configuration of " + packageID
	}
	return kind + " configuration of " + packageID + " for " + idString(identityID)
}

func (s *store) PutDynamicConfig(ctx context.Context, packageID string, identityID int64, kind string, xml []byte) error {
	const op = "put"
	obj := configObj(packageID, identityID, kind)
	pid, err := guid("PackageId", packageID)
	if err == nil {
		err = checkConfigKind(kind)
	}
	switch {
	case err != nil:
	case len(xml) == 0:
		err = invalidf("empty XML")
	case len(xml) > maxConfig:
		err = invalidf("XML larger than %d bytes", maxConfig)
	}
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		pkg, err := packageKey(ctx, c, pid)
		if err != nil {
			return err
		}
		if identityID != 0 {
			if err := requireIdentity(ctx, c, identityID); err != nil {
				return err
			}
		}
		// write has incremented the counter: serial is this write's value.
		_, err = c.exec(ctx, `INSERT INTO dynamic_configs (package, identity_id, kind, xml, updated_at, serial)
			VALUES (?, ?, ?, ?, ?, (SELECT value FROM revision WHERE id = 1))
			ON CONFLICT (package, identity_id, kind) DO UPDATE
			SET xml = excluded.xml, updated_at = excluded.updated_at, serial = excluded.serial`,
			pkg, identityID, kind, xml, unixNano(time.Now()))
		return err
	})
	return s.wrap(op, obj, err)
}

func (s *store) DynamicConfig(ctx context.Context, packageID string, identityID int64, kind string) ([]byte, error) {
	const op = "get"
	obj := configObj(packageID, identityID, kind)
	pid, err := guid("PackageId", packageID)
	if err == nil {
		err = checkConfigKind(kind)
	}
	if err != nil {
		return nil, s.wrap(op, obj, err)
	}
	var xml []byte
	err = s.reader().row(ctx, `SELECT d.xml FROM dynamic_configs d JOIN packages p ON p.id = d.package
		WHERE p.package_id = ? AND d.identity_id = ? AND d.kind = ?`,
		pid, identityID, kind).Scan(&xml)
	if err != nil {
		return nil, s.wrap(op, obj, err)
	}
	return xml, nil
}

func (s *store) DynamicConfigs(ctx context.Context, packageID string) ([]DynamicConfig, error) {
	const op = "list dynamic configuration of"
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return nil, s.wrap(op, packageID, err)
	}
	rows, err := s.reader().query(ctx, `SELECT d.identity_id, d.kind, d.xml, d.updated_at, d.serial
		FROM dynamic_configs d JOIN packages p ON p.id = d.package
		WHERE p.package_id = ? ORDER BY d.identity_id, d.kind`, pid)
	if err != nil {
		return nil, s.wrap(op, pid, err)
	}
	defer rows.Close()
	var out []DynamicConfig
	for rows.Next() {
		d := DynamicConfig{PackageID: pid}
		var updated int64
		if err := rows.Scan(&d.IdentityID, &d.Kind, &d.XML, &updated, &d.Serial); err != nil {
			return nil, s.wrap(op, pid, err)
		}
		d.UpdatedAt = fromUnixNano(updated)
		out = append(out, d)
	}
	return out, s.wrap(op, pid, rows.Err())
}

func (s *store) RemoveDynamicConfig(ctx context.Context, packageID string, identityID int64, kind string) error {
	const op = "remove"
	obj := configObj(packageID, identityID, kind)
	pid, err := guid("PackageId", packageID)
	if err == nil {
		err = checkConfigKind(kind)
	}
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		return c.execOne(ctx, `DELETE FROM dynamic_configs
			WHERE package = (SELECT id FROM packages WHERE package_id = ?) AND identity_id = ? AND kind = ?`, pid, identityID, kind)
	})
	return s.wrap(op, obj, err)
}
