package serverdb

import (
	"cmp"
	"context"
)

// requirePackage fails with ErrNotFound unless the package exists.
func requirePackage(ctx context.Context, c conn, packageID string) error {
	_, err := packageKey(ctx, c, packageID)
	return err
}

// requireIdentity fails with ErrNotFound unless the identity exists.
func requireIdentity(ctx context.Context, c conn, id int64) error {
	_, err := kindOf(ctx, c, id)
	return err
}

// requireGroup fails with ErrNotFound unless the connection group exists.
func requireGroup(ctx context.Context, c conn, groupID string) error {
	found, err := c.exists(ctx, `SELECT 1 FROM connection_groups WHERE group_id = ?`, groupID)
	if err == nil && !found {
		return notFoundf("no connection group %s", groupID)
	}
	return err
}

func (s *store) Entitle(ctx context.Context, packageID string, identityID int64) error {
	const op = "entitle"
	obj := idString(identityID) + " to " + packageID
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		pkg, err := packageKey(ctx, c, pid)
		if err != nil {
			return err
		}
		if err := requireIdentity(ctx, c, identityID); err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO entitlements (identity_id, package) VALUES (?, ?)
			ON CONFLICT (identity_id, package) DO NOTHING`, identityID, pkg)
		return err
	})
	return s.wrap(op, obj, err)
}

func (s *store) Unentitle(ctx context.Context, packageID string, identityID int64) error {
	const op = "unentitle"
	obj := idString(identityID) + " from " + packageID
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		return c.execOneOr(ctx, notFoundf("not entitled"), `DELETE FROM entitlements
			WHERE identity_id = ? AND package = (SELECT id FROM packages WHERE package_id = ?)`, identityID, pid)
	})
	return s.wrap(op, obj, err)
}

func (s *store) Entitlements(ctx context.Context, packageID string) ([]Identity, error) {
	const op = "list entitlements of"
	pid, err := guid("PackageId", packageID)
	if err != nil {
		return nil, s.wrap(op, packageID, err)
	}
	var out []Identity
	err = s.read(ctx, func(c conn) error {
		pkg, err := packageKey(ctx, c, pid)
		if err != nil {
			return err
		}
		out, err = scanIdentities(c.query(ctx, `SELECT i.id, i.kind, i.name
			FROM entitlements e JOIN identities i ON i.id = e.identity_id WHERE e.package = ? ORDER BY i.id`, pkg))
		return err
	})
	return out, s.wrap(op, pid, err)
}

func (s *store) EntitleConnectionGroup(ctx context.Context, groupID string, identityID int64) error {
	const op = "entitle"
	obj := idString(identityID) + " to connection group " + groupID
	gid, err := guid("GroupId", groupID)
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		if err := cmp.Or(requireGroup(ctx, c, gid), requireIdentity(ctx, c, identityID)); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO connection_group_entitlements (identity_id, group_id) VALUES (?, ?)
			ON CONFLICT (identity_id, group_id) DO NOTHING`, identityID, gid)
		return err
	})
	return s.wrap(op, obj, err)
}

func (s *store) UnentitleConnectionGroup(ctx context.Context, groupID string, identityID int64) error {
	const op = "unentitle"
	obj := idString(identityID) + " from connection group " + groupID
	gid, err := guid("GroupId", groupID)
	if err != nil {
		return s.wrap(op, obj, err)
	}
	err = s.write(ctx, func(c conn) error {
		return c.execOneOr(ctx, notFoundf("not entitled"), `DELETE FROM connection_group_entitlements WHERE identity_id = ? AND group_id = ?`, identityID, gid)
	})
	return s.wrap(op, obj, err)
}

func (s *store) ConnectionGroupEntitlements(ctx context.Context, groupID string) ([]Identity, error) {
	const op = "list entitlements of connection group"
	gid, err := guid("GroupId", groupID)
	if err != nil {
		return nil, s.wrap(op, groupID, err)
	}
	var out []Identity
	err = s.read(ctx, func(c conn) error {
		if err := requireGroup(ctx, c, gid); err != nil {
			return err
		}
		var err error
		out, err = scanIdentities(c.query(ctx, `SELECT i.id, i.kind, i.name
			FROM connection_group_entitlements e JOIN identities i ON i.id = e.identity_id
			WHERE e.group_id = ? ORDER BY i.id`, gid))
		return err
	})
	return out, s.wrap(op, gid, err)
}
