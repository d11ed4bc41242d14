ALTER TABLE "agents" ADD COLUMN "turn_detection" jsonb DEFAULT '{"mode":"adaptive","minSilenceMs":250,"maxSilenceMs":900}'::jsonb NOT NULL;--> statement-breakpoint
-- An agent whose endpointing was tuned away from the default keeps that fixed silence: its owner chose it.
UPDATE "agents" SET "turn_detection" = '{"mode":"fixed","minSilenceMs":250,"maxSilenceMs":900}'::jsonb WHERE ("stt"->>'endpointingMs')::int <> 400;
