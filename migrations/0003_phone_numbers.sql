CREATE TABLE "phone_numbers" (
	"id" text PRIMARY KEY NOT NULL,
	"organization_id" text NOT NULL,
	"provider" text DEFAULT 'twilio' NOT NULL,
	"provider_sid" text NOT NULL,
	"phone_number" text NOT NULL,
	"friendly_name" text DEFAULT '' NOT NULL,
	"agent_id" text,
	"capabilities" jsonb DEFAULT '{"voice":true,"sms":false,"mms":false,"fax":false}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "phone_numbers" ADD CONSTRAINT "phone_numbers_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "phone_numbers" ADD CONSTRAINT "phone_numbers_agent_id_agents_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agents"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "phone_numbers_org_idx" ON "phone_numbers" USING btree ("organization_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "phone_numbers_live_number_key" ON "phone_numbers" USING btree ("phone_number") WHERE "phone_numbers"."released_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "phone_numbers_live_sid_key" ON "phone_numbers" USING btree ("provider","provider_sid") WHERE "phone_numbers"."released_at" is null;