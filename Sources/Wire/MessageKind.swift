/// How a message body takes part in a call. The connection routes every inbound frame by its kind
/// and call id (Docs/wire-protocol.md, "Calls").
enum MessageKind: Equatable {
    /// Handshake and keepalive.
    case control
    /// Starts a call that gets exactly one reply. With call id 0 it is one-way (no reply).
    case request
    /// Starts a long-lived stream.
    case streamOpen
    /// A message that only travels one-way, with call id 0.
    case oneWay
    /// The one answer to a request; on a stream, its final message.
    case reply
    /// One item of an open stream, in either direction.
    case streamItem
    /// Normal end of a stream from the answering side (or the end of the opener's items).
    case end
    /// The opener abandons its call or stream.
    case cancel
    /// A failure: ends a call, or with call id 0 the connection.
    case error
}

extension Envelope.Body {
    var kind: MessageKind {
        switch self {
        case .hello, .helloAck, .ping, .pong: .control
        case .error: .error
        case .cancel: .cancel
        case .end: .end
        case .registerInstance, .deregisterInstance, .scheduleRequest, .finishRequest, .statusRequest,
             .setPolicyRequest, .drainRequest, .membershipChangeRequest, .forwardProposal, .readIndexRequest,
             .budgetLeaseRequest, .tenantsRequest:
            .request
        case .openReportStream, .subscribeInstances, .subscribeCapacity: .streamOpen
        case .raftMessage: .oneWay
        case .ack, .notLeader, .registerReply, .scheduleReply, .statusReply, .proposalReply, .readIndexReply,
             .budgetLeaseReply, .tenantsReply:
            .reply
        case .loadReport, .reportAck, .instanceTable, .capacityAvailable: .streamItem
        }
    }

    /// The protobuf field name, for logs and error messages.
    public var name: String {
        switch self {
        case .hello: "hello"
        case .helloAck: "hello_ack"
        case .error: "error"
        case .ping: "ping"
        case .pong: "pong"
        case .cancel: "cancel"
        case .end: "end"
        case .ack: "ack"
        case .notLeader: "not_leader"
        case .registerInstance: "register_instance"
        case .registerReply: "register_reply"
        case .openReportStream: "open_report_stream"
        case .loadReport: "load_report"
        case .reportAck: "report_ack"
        case .deregisterInstance: "deregister_instance"
        case .scheduleRequest: "schedule_request"
        case .scheduleReply: "schedule_reply"
        case .finishRequest: "finish_request"
        case .subscribeInstances: "subscribe_instances"
        case .instanceTable: "instance_table"
        case .subscribeCapacity: "subscribe_capacity"
        case .capacityAvailable: "capacity_available"
        case .budgetLeaseRequest: "budget_lease_request"
        case .budgetLeaseReply: "budget_lease_reply"
        case .tenantsRequest: "tenants_request"
        case .tenantsReply: "tenants_reply"
        case .statusRequest: "status_request"
        case .statusReply: "status_reply"
        case .setPolicyRequest: "set_policy_request"
        case .drainRequest: "drain_request"
        case .membershipChangeRequest: "membership_change_request"
        case .raftMessage: "raft_message"
        case .forwardProposal: "forward_proposal"
        case .proposalReply: "proposal_reply"
        case .readIndexRequest: "read_index_request"
        case .readIndexReply: "read_index_reply"
        }
    }
}
