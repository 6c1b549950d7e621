package api

import "easymail/internal/incident"

// P1 is incident.P1.
const P1 = incident.P1

// P2 is incident.P2.
const P2 = incident.P2

// P3 is incident.P3.
const P3 = incident.P3

// P4 is incident.P4.
const P4 = incident.P4

// ChannelPhone is incident.ChannelPhone.
const ChannelPhone = incident.ChannelPhone

// ChannelEmail is incident.ChannelEmail.
const ChannelEmail = incident.ChannelEmail

// ChannelPortal is incident.ChannelPortal.
const ChannelPortal = incident.ChannelPortal

// ChannelAPI is incident.ChannelAPI.
const ChannelAPI = incident.ChannelAPI

// ChannelMonitor is incident.ChannelMonitor.
const ChannelMonitor = incident.ChannelMonitor

// IncidentNew is incident.StatusNew.
const IncidentNew = incident.StatusNew

// IncidentAcknowledged is incident.StatusAcknowledged.
const IncidentAcknowledged = incident.StatusAcknowledged

// IncidentInProgress is incident.StatusInProgress.
const IncidentInProgress = incident.StatusInProgress

// IncidentResolved is incident.StatusResolved.
const IncidentResolved = incident.StatusResolved

// IncidentConfirmed is incident.StatusConfirmed.
const IncidentConfirmed = incident.StatusConfirmed

// IncidentClosed is incident.StatusClosed.
const IncidentClosed = incident.StatusClosed

// VisibilityCustomer is incident.VisibilityCustomer.
const VisibilityCustomer = incident.VisibilityCustomer

// VisibilityInternal is incident.VisibilityInternal.
const VisibilityInternal = incident.VisibilityInternal

// Incident is incident.Incident.
type Incident = incident.Incident

// IncidentSLA is incident.SLA.
type IncidentSLA = incident.SLA

// IncidentLink is incident.Link.
type IncidentLink = incident.Link

// IncidentEvent is incident.Event.
type IncidentEvent = incident.Event

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

// SLAReportCount is incident.ReportCount.
type SLAReportCount = incident.ReportCount

// SLAReportLine is incident.ReportLine.
type SLAReportLine = incident.ReportLine
