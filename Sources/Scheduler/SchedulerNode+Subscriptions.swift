import Wire

/// The instance-table and capacity subscriptions a node serves (see `SubscriptionHub`).
extension SchedulerNode {
    func instanceTable() async -> InstanceTable {
        let status = await replica.status
        let state = await replica.state
        return InstanceTable(
            version: state.registryVersion, instances: state.sortedInstances.map(SchedulerCommandCoding.instance),
            leaderID: status.leader ?? 0, term: status.term)
    }

    func publishTableIfChanged() async {
        guard hub.tableSubscribers > 0 else { return }
        hub.publishIfChanged(await instanceTable())
    }

    func subscribeInstances() async -> (id: UInt64, tables: AsyncStream<InstanceTable>) {
        hub.addTableSubscriber(current: await instanceTable())
    }

    /// Capacity signals come only from the leader (only it knows the load); nil elsewhere.
    func subscribeCapacity(model: String) async -> (id: UInt64, signals: AsyncStream<CapacityAvailable>)? {
        guard await leads() else { return nil }
        return hub.addCapacitySubscriber(model: model)
    }

    func unsubscribe(_ id: UInt64) { hub.remove(id) }

    /// After a request finished or a report came: if requests for a model this instance serves
    /// (its base model, an alias or an adapter) were told to wait and the instance now has room,
    /// tell the capacity subscribers once per such model.
    func signalCapacityIfWaiting(_ instance: String) {
        guard !soft.modelsWaiting.isEmpty, let record = onReplica({ $0.state.instances[instance] }), record.state == .up else { return }
        let waiting = record.servedModels.filter { soft.modelsWaiting[$0] != nil }
        guard !waiting.isEmpty else { return }
        let view = soft.view(of: record, now: .now)
        let queued = view.load.map { $0.waiting + view.inFlightSinceReport } ?? 0
        for model in waiting {
            // Room for the least demanding of the requests told to wait.
            guard let asked = soft.modelsWaiting[model], !soft.router.isFull(view, for: asked) else { continue }
            soft.modelsWaiting.removeValue(forKey: model)
            hub.signalCapacity(
                CapacityAvailable(
                    model: model, instanceID: instance,
                    freeSlots: UInt32(clamping: max(1, soft.router.configuration.saturatedWaiting - queued))))
        }
    }
}
