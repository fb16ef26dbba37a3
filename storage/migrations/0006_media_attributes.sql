-- What the Bot API told about the media besides its bytes, so the account posts it as Telegram
-- showed it to the user: a video's size and length, and the thumbnail of videos and documents.
ALTER TABLE media ADD COLUMN width integer NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN height integer NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN duration double precision NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN thumb bytea;
ALTER TABLE media ADD CONSTRAINT media_dimensions_check CHECK (width >= 0 AND height >= 0 AND duration >= 0);
