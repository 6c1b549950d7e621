package api

import "easymail/internal/incident"

// ChannelPortal is incident.ChannelPortal.
const ChannelPortal = incident.ChannelPortal

// ChannelAPI is incident.ChannelAPI.
const ChannelAPI = incident.ChannelAPI

// IncidentNew is incident.StatusNew.
const IncidentNew = incident.StatusNew

// IncidentAcknowledged is incident.StatusAcknowledged.
const IncidentAcknowledged = incident.StatusAcknowledged

// IncidentResolved is incident.StatusResolved.
const IncidentResolved = incident.StatusResolved

// IncidentConfirmed is incident.StatusConfirmed.
const IncidentConfirmed = incident.StatusConfirmed

// IncidentClosed is incident.StatusClosed.
const IncidentClosed = incident.StatusClosed

// VisibilityCustomer is incident.VisibilityCustomer.
const VisibilityCustomer = incident.VisibilityCustomer

// Incident is incident.Incident.
type Incident = incident.Incident

// IncidentCreate is incident.Create.
type IncidentCreate = incident.Create

// IncidentUpdate is incident.Update.
type IncidentUpdate = incident.Update

// IncidentComment is incident.Comment.
type IncidentComment = incident.Comment

// IncidentNote is incident.Note.
type IncidentNote = incident.Note

// SLAReport is incident.Report.
type SLAReport = incident.Report
