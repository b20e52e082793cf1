//! The features the shipped bot registers: routes beyond the built-in ones, and job kinds.

use std::sync::Arc;

use crate::app::Extensions;
use crate::handlers::Route;
use crate::handlers::connect::{ConnectCommand, ConnectSubmit};
use crate::handlers::followup::{
    EarlierMeetings, EditSubmit, FollowupAction, FollowupCommand, GENERATE_JOB, Pending,
    PickSubmit, RecordingAction, RetryFollowup, ViewFollowup,
};
use crate::handlers::settings::{SettingsCommand, SettingsSubmit};
use crate::jobs::generate::Generate;

pub fn extensions() -> Extensions {
    let mut ext = Extensions::default();
    let mut route = |r: Route, h: Arc<dyn crate::handlers::Handler>| ext.routes.push((r, h));
    let command = |c: &str| Route::Command(c.to_owned());
    let action = |a: &str| Route::Action(a.to_owned());
    let submit = |c: &str| Route::Submission(c.to_owned());

    route(command("/fathom-connect"), Arc::new(ConnectCommand));
    route(submit("fathom_connect"), Arc::new(ConnectSubmit));

    route(command("/followup"), Arc::new(FollowupCommand));
    route(action("followup_earlier"), Arc::new(EarlierMeetings));
    route(submit("followup_pick"), Arc::new(PickSubmit));
    route(action("followup_view"), Arc::new(ViewFollowup));
    route(submit("followup_edit"), Arc::new(EditSubmit));
    route(action("followup_retry"), Arc::new(RetryFollowup));
    for (id, pending) in [
        ("followup_gmail", Pending::Gmail),
        ("followup_calendar", Pending::Calendar),
        ("followup_crm_note", Pending::CrmNote),
        ("followup_deals", Pending::Deals),
        ("followup_task", Pending::Task),
    ] {
        route(action(id), Arc::new(FollowupAction(pending)));
    }
    route(action("recording_draft"), Arc::new(RecordingAction(None)));
    for (id, pending) in [
        ("recording_crm_note", Pending::CrmNote),
        ("recording_task", Pending::Task),
        ("recording_deals", Pending::Deals),
    ] {
        route(action(id), Arc::new(RecordingAction(Some(pending))));
    }

    route(command("/followup-settings"), Arc::new(SettingsCommand));
    route(submit("followup_settings"), Arc::new(SettingsSubmit));

    ext.jobs.add(GENERATE_JOB, Arc::new(Generate));
    ext
}
