-- Who sent an invitation, so the link's page can say "Ada invited you to
-- Acme" as the mail did. A user id (the name is read when shown); empty for
-- invitations sent before this column existed.
ALTER TABLE invitations ADD COLUMN invited_by TEXT;
