"""Every text the pages show, in English and Vietnamese: one catalogue, so a page cannot say
something in one language only (a test checks that both have every key and the same
placeholders). Pure."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Literal

Language = Literal["en", "vi"]
LANGUAGES: tuple[Language, ...] = ("en", "vi")
DEFAULT: Language = "en"

MESSAGES: dict[str, dict[Language, str]] = {
    "app": {"en": "parkflow", "vi": "parkflow"},
    "lang.en": {"en": "English", "vi": "English"},
    "lang.vi": {"en": "Tiếng Việt", "vi": "Tiếng Việt"},
    "nav.overview": {"en": "Park", "vi": "Khu công nghiệp"},
    "nav.opportunities": {"en": "Opportunities and plan", "vi": "Cơ hội và kế hoạch"},
    "nav.exchanges": {"en": "Exchange pipeline", "vi": "Tiến trình trao đổi"},
    "nav.savings": {"en": "Realised savings", "vi": "Tiết kiệm thực tế"},
    "nav.alerts": {"en": "Alerts", "vi": "Cảnh báo"},
    "nav.my_flows": {"en": "My meters and flows", "vi": "Đồng hồ và dòng chảy của tôi"},
    "nav.my_opportunities": {"en": "My opportunities", "vi": "Cơ hội của tôi"},
    "nav.my_savings": {"en": "My savings", "vi": "Tiết kiệm của tôi"},
    "login.title": {"en": "Sign in", "vi": "Đăng nhập"},
    "login.key": {"en": "API key", "vi": "Khóa API"},
    "login.help": {
        "en": "Sign in with the API key your park operator gave you (pfk_...).",
        "vi": "Đăng nhập bằng khóa API do ban quản lý khu công nghiệp cấp (pfk_...).",
    },
    "login.submit": {"en": "Sign in", "vi": "Đăng nhập"},
    "login.bad_key": {
        "en": "That key is not valid (unknown or revoked).",
        "vi": "Khóa này không hợp lệ (không tồn tại hoặc đã bị thu hồi).",
    },
    "login.expired": {
        "en": "Your session has ended: sign in again.",
        "vi": "Phiên làm việc đã kết thúc: vui lòng đăng nhập lại.",
    },
    "logout": {"en": "Sign out", "vi": "Đăng xuất"},
    "signed_in_as": {"en": "Signed in as {name}", "vi": "Đang đăng nhập: {name}"},
    "demo.banner": {
        "en": "Demo mode: the park overview is open to anyone, read only. Sign in to act.",
        "vi": "Chế độ trình diễn: ai cũng xem được tổng quan, chỉ đọc. Đăng nhập để thao tác.",
    },
    "error.title": {"en": "Not allowed", "vi": "Không được phép"},
    "error.not_found_title": {"en": "Not found", "vi": "Không tìm thấy"},
    "error.no_page": {
        "en": "There is no such page.",
        "vi": "Không có trang này.",
    },
    "error.reason_needed": {
        "en": "Say why you acknowledge it: a reason is required.",
        "vi": "Hãy nêu lý do xác nhận: lý do là bắt buộc.",
    },
    "error.operators_only": {
        "en": "This page is for the park's operators.",
        "vi": "Trang này dành cho ban quản lý khu công nghiệp.",
    },
    "error.tenants_only": {
        "en": "This page is for a tenant's key.",
        "vi": "Trang này dành cho khóa của doanh nghiệp thuê.",
    },
    "error.not_found": {"en": "Not found.", "vi": "Không tìm thấy."},
    "error.csrf": {
        "en": "The form was stale or not sent from these pages: reload and try again.",
        "vi": "Biểu mẫu đã cũ hoặc không gửi từ các trang này: tải lại và thử lại.",
    },
    "no_run": {
        "en": "No detection run yet: the figures appear after the first one.",
        "vi": "Chưa có lần phát hiện nào: số liệu sẽ xuất hiện sau lần chạy đầu tiên.",
    },
    "none": {"en": "None.", "vi": "Không có."},
    "period": {
        "en": "The {days} complete days to {until}",
        "vi": "{days} ngày trọn vẹn đến hết {until}",
    },
    "overview.title": {"en": "Park overview", "vi": "Tổng quan khu công nghiệp"},
    "overview.flows": {
        "en": "Flows by resource and tenant",
        "vi": "Dòng chảy theo tài nguyên và doanh nghiệp",
    },
    "overview.plan": {"en": "The park's plan", "vi": "Kế hoạch của khu"},
    "overview.plan_line": {
        "en": "{n} exchanges, {vnd}/yr for the park, {co2} t CO2e/yr avoided, {water} m3/yr of water saved, {landfill} t/yr kept out of landfill (solver: {status}).",
        "vi": "{n} trao đổi, {vnd}/năm cho cả khu, tránh {co2} t CO2e/năm, tiết kiệm {water} m3 nước/năm, giảm {landfill} t/năm chôn lấp (bộ giải: {status}).",
    },
    "overview.plan_confidence": {
        "en": "{share} of the value rests on assumed figures; P10-P90 {p10} to {p90}/yr.",
        "vi": "{share} giá trị dựa trên số liệu giả định; P10-P90 từ {p10} đến {p90}/năm.",
    },
    "overview.park_share": {
        "en": "This park's share of the plan (its links summed; the registry's totals are for operators of every park): {n} exchanges, {vnd}/yr, {co2} t CO2e/yr avoided, {water} m3/yr of water saved, {landfill} t/yr kept out of landfill.",
        "vi": "Phần của khu này trong kế hoạch (cộng các liên kết của khu; tổng của toàn hệ thống dành cho ban quản lý mọi khu): {n} trao đổi, {vnd}/năm, tránh {co2} t CO2e/năm, tiết kiệm {water} m3 nước/năm, giảm {landfill} t/năm chôn lấp.",
    },
    "overview.no_plan": {
        "en": "No plan saved with this run.",
        "vi": "Lần chạy này không lưu kế hoạch.",
    },
    "overview.alerts": {
        "en": "Alerts: {open} open, {acked} acknowledged",
        "vi": "Cảnh báo: {open} đang mở, {acked} đã xác nhận",
    },
    "overview.more_alerts": {
        "en": "{n} more on the alerts page",
        "vi": "thêm {n} cảnh báo trên trang cảnh báo",
    },
    "overview.sign_in_for_alerts": {
        "en": "Sign in to see all",
        "vi": "Đăng nhập để xem tất cả",
    },
    "overview.counts_only": {
        "en": "Without a key the alerts are counted, not shown: their texts name tenants and the parties of exchanges not yet agreed to.",
        "vi": "Khi chưa đăng nhập, cảnh báo chỉ được đếm, không hiển thị: nội dung của chúng nêu tên doanh nghiệp và các bên của những trao đổi chưa được đồng ý.",
    },
    "overview.quality": {"en": "Data quality", "vi": "Chất lượng dữ liệu"},
    "overview.coverage": {
        "en": "Hours with data: {share} of the meter-hours of the {days} days since the data began.",
        "vi": "Số giờ có dữ liệu: {share} số giờ-đồng hồ của {days} ngày kể từ khi có dữ liệu.",
    },
    "overview.per_day_note": {
        "en": "Per day: the total over the days with data. Coverage: the hours with data of the {days} days since the data began.",
        "vi": "Mỗi ngày: tổng chia cho số ngày có dữ liệu. Độ phủ: số giờ có dữ liệu trong {days} ngày kể từ khi có dữ liệu.",
    },
    "overview.quarantine": {
        "en": "Quarantined records by reason",
        "vi": "Bản ghi bị cách ly theo lý do",
    },
    "col.resource": {"en": "Resource", "vi": "Tài nguyên"},
    "col.tenant": {"en": "Tenant", "vi": "Doanh nghiệp"},
    "col.meter": {"en": "Meter", "vi": "Đồng hồ"},
    "col.direction": {"en": "Direction", "vi": "Chiều"},
    "col.total": {"en": "Total", "vi": "Tổng"},
    "col.per_day": {"en": "Per day with data", "vi": "Mỗi ngày có dữ liệu"},
    "col.unit": {"en": "Unit", "vi": "Đơn vị"},
    "col.coverage": {"en": "Coverage", "vi": "Độ phủ"},
    "col.kind": {"en": "Kind", "vi": "Loại"},
    "col.severity": {"en": "Severity", "vi": "Mức độ"},
    "col.status": {"en": "Status", "vi": "Trạng thái"},
    "col.summary": {"en": "Summary", "vi": "Tóm tắt"},
    "col.opened": {"en": "Opened", "vi": "Mở lúc"},
    "col.count": {"en": "Count", "vi": "Số lượng"},
    "col.reason": {"en": "Reason", "vi": "Lý do"},
    "col.rank": {"en": "Alt #", "vi": "Phương án #"},
    "col.rule": {"en": "Rule", "vi": "Quy tắc"},
    "col.from": {"en": "From", "vi": "Từ"},
    "col.to": {"en": "To", "vi": "Đến"},
    "col.alone": {"en": "Alone/day", "vi": "Riêng lẻ/ngày"},
    "col.planned": {"en": "Planned/day", "vi": "Theo kế hoạch/ngày"},
    "col.value": {"en": "Value/yr (park)", "vi": "Giá trị/năm (cả khu)"},
    "col.co2": {"en": "t CO2e/yr", "vi": "t CO2e/năm"},
    "col.legal": {"en": "Legal", "vi": "Pháp lý"},
    "opps.competes": {"en": "Competes with", "vi": "Cạnh tranh với"},
    "opps.competes_why": {
        "en": "for the same surplus or demand; the plan says which run and how much.",
        "vi": "về cùng một nguồn dư hoặc nhu cầu; kế hoạch cho biết phương án nào được thực hiện và bao nhiêu.",
    },
    "col.exchange": {"en": "Exchange", "vi": "Trao đổi"},
    "col.stage": {"en": "Stage", "vi": "Giai đoạn"},
    "col.owner": {"en": "Owner", "vi": "Phụ trách"},
    "col.barrier": {"en": "Barrier", "vi": "Rào cản"},
    "col.parties": {"en": "Supplier → receiver", "vi": "Bên cung cấp → bên nhận"},
    "col.move": {"en": "Move to", "vi": "Chuyển sang"},
    "col.note": {
        "en": "Note (needed to reject or end)",
        "vi": "Ghi chú (bắt buộc khi loại bỏ hoặc kết thúc)",
    },
    "col.month": {"en": "Month", "vi": "Tháng"},
    "col.days": {"en": "Days", "vi": "Số ngày"},
    "col.quantity": {"en": "Quantity", "vi": "Khối lượng"},
    "col.park_vnd": {"en": "Park", "vi": "Cả khu"},
    "col.supplier_vnd": {"en": "Supplier", "vi": "Bên cung cấp"},
    "col.receiver_vnd": {"en": "Receiver", "vi": "Bên nhận"},
    "col.water": {"en": "Water m3", "vi": "Nước m3"},
    "col.co2_t": {"en": "t CO2e", "vi": "t CO2e"},
    "col.realised": {"en": "Realised/projected", "vi": "Thực tế/dự kiến"},
    "col.role": {"en": "My role", "vi": "Vai trò của tôi"},
    "col.my_vnd": {"en": "My money", "vi": "Tiền của tôi"},
    "col.last": {"en": "Last reading", "vi": "Số đọc cuối"},
    "col.action": {"en": "Action", "vi": "Thao tác"},
    "col.reference": {"en": "Reference", "vi": "Mã tham chiếu"},
    "dir.in": {"en": "uses", "vi": "sử dụng"},
    "dir.out": {"en": "supplies", "vi": "cung cấp"},
    "role.supplier": {"en": "supplier", "vi": "bên cung cấp"},
    "role.receiver": {"en": "receiver", "vi": "bên nhận"},
    "opps.title": {"en": "Opportunities and the plan", "vi": "Cơ hội và kế hoạch"},
    "opps.alternatives": {
        "en": "The ranked rows are alternatives: rows that share a surplus or a demand compete for it (the same kWh or m3 offered to several receivers, or one need several suppliers could meet), so they are never added up. The plan above is the allocation the park runs, which may give a surplus to several rows in part; its totals are the only ones reported.",
        "vi": "Các dòng xếp hạng là các phương án thay thế: các dòng dùng chung một nguồn dư hoặc một nhu cầu thì cạnh tranh với nhau (cùng một kWh hay m3 chào cho nhiều bên nhận, hoặc một nhu cầu mà nhiều bên cung cấp có thể đáp ứng), nên không bao giờ cộng lại. Kế hoạch bên trên là phân bổ mà khu thực hiện, có thể chia một nguồn dư cho nhiều dòng; chỉ tổng của nó được báo cáo.",
    },
    "opps.ranked": {"en": "Ranked alternatives", "vi": "Các phương án xếp hạng"},
    "opps.plan": {"en": "The plan", "vi": "Kế hoạch"},
    "opps.not_planned": {"en": "not in the plan", "vi": "không có trong kế hoạch"},
    "exchanges.title": {"en": "Exchange pipeline", "vi": "Tiến trình trao đổi"},
    "exchanges.moved": {
        "en": "Exchange {id} moved to {stage}.",
        "vi": "Trao đổi {id} đã chuyển sang {stage}.",
    },
    "exchanges.refused": {"en": "Not moved: {why}", "vi": "Không chuyển được: {why}"},
    "exchanges.submit": {"en": "Move", "vi": "Chuyển"},
    "exchanges.ended": {"en": "ended: no further move", "vi": "đã kết thúc: không chuyển tiếp"},
    "savings.title": {"en": "Realised savings", "vi": "Tiết kiệm thực tế"},
    "savings.chart": {"en": "The park's savings by month", "vi": "Tiết kiệm của khu theo tháng"},
    "savings.total": {"en": "Total", "vi": "Tổng cộng"},
    "savings.report": {
        "en": "The park's report for last month (printable; ?period=2026 for a year)",
        "vi": "Báo cáo của khu tháng trước (để in; ?period=2026 cho cả năm)",
    },
    "savings.park": {"en": "the park", "vi": "cả khu"},
    "savings.none": {
        "en": "No verified days yet: savings appear once a registered exchange operates and its meters report.",
        "vi": "Chưa có ngày được xác minh: tiết kiệm sẽ xuất hiện khi một trao đổi đã đăng ký vận hành và đồng hồ gửi số liệu.",
    },
    "alerts.title": {"en": "Alerts", "vi": "Cảnh báo"},
    "alerts.opportunity_for_you": {
        "en": "An exchange opportunity for you, reference {ref}: see your opportunities.",
        "vi": "Có một cơ hội trao đổi cho bạn, mã tham chiếu {ref}: xem mục cơ hội của bạn.",
    },
    "alerts.ack": {"en": "Acknowledge", "vi": "Xác nhận"},
    "alerts.ack_reason": {"en": "Why (required)", "vi": "Lý do (bắt buộc)"},
    "alerts.acked": {"en": "Alert acknowledged.", "vi": "Đã xác nhận cảnh báo."},
    "alerts.acked_by": {"en": "acknowledged by {who}", "vi": "đã xác nhận bởi {who}"},
    "status.open": {"en": "open", "vi": "đang mở"},
    "status.acknowledged": {"en": "acknowledged", "vi": "đã xác nhận"},
    "status.resolved": {"en": "resolved", "vi": "đã xử lý"},
    "severity.info": {"en": "info", "vi": "thông tin"},
    "severity.warning": {"en": "warning", "vi": "cảnh báo"},
    "severity.critical": {"en": "critical", "vi": "nghiêm trọng"},
    "flows.title": {"en": "My meters and flows", "vi": "Đồng hồ và dòng chảy của tôi"},
    "flows.chart": {"en": "Per day", "vi": "Theo ngày"},
    "flows.stale": {"en": "stale", "vi": "mất tín hiệu"},
    "my_opps.title": {"en": "My opportunities", "vi": "Cơ hội của tôi"},
    "my_opps.anonymised": {
        "en": "The other party is not named until both of you consented to be introduced.",
        "vi": "Bên kia chỉ được nêu tên khi cả hai bên đã đồng ý được giới thiệu.",
    },
    "my_opps.consent": {"en": "Consent to be introduced", "vi": "Đồng ý được giới thiệu"},
    "my_opps.consented": {
        "en": "You consented; the other party is named once it consents too.",
        "vi": "Bạn đã đồng ý; bên kia sẽ được nêu tên khi họ cũng đồng ý.",
    },
    "my_opps.introduced": {
        "en": "Both parties consented: introduced.",
        "vi": "Cả hai bên đã đồng ý: đã giới thiệu.",
    },
    "my_opps.given": {"en": "Your consent is recorded.", "vi": "Đã ghi nhận sự đồng ý của bạn."},
    "my_savings.title": {
        "en": "Savings of my exchanges",
        "vi": "Tiết kiệm từ các trao đổi của tôi",
    },
    "my_savings.chart": {"en": "My money by month", "vi": "Tiền của tôi theo tháng"},
    "stage.identified": {"en": "identified", "vi": "đã xác định"},
    "stage.screened": {"en": "screened", "vi": "đã sàng lọc"},
    "stage.under_study": {"en": "under study", "vi": "đang nghiên cứu"},
    "stage.agreed": {"en": "agreed", "vi": "đã thỏa thuận"},
    "stage.operating": {"en": "operating", "vi": "đang vận hành"},
    "stage.verified": {"en": "verified", "vi": "đã xác minh"},
    "stage.rejected": {"en": "rejected", "vi": "đã loại bỏ"},
    "stage.ended": {"en": "ended", "vi": "đã kết thúc"},
    "chart.no_data": {"en": "no data", "vi": "không có dữ liệu"},
    "legal.allowed": {"en": "allowed", "vi": "được phép"},
    "legal.conditional": {"en": "allowed with conditions", "vi": "được phép có điều kiện"},
    "legal.allowed_with_conditions": {
        "en": "allowed with conditions",
        "vi": "được phép có điều kiện",
    },
    "legal.permit": {
        "en": "needs a permit or an eligibility check",
        "vi": "cần giấy phép hoặc kiểm tra điều kiện",
    },
    "legal.not_allowed": {"en": "not allowed", "vi": "không được phép"},
    "legal.unknown": {"en": "unknown", "vi": "chưa rõ"},
    "solver.optimal": {"en": "optimal", "vi": "tối ưu"},
    "solver.stopped": {"en": "stopped: {why}", "vi": "dừng: {why}"},
    "kind.surplus": {"en": "surplus", "vi": "nguồn dư"},
    "kind.opportunity": {"en": "opportunity", "vi": "cơ hội trao đổi"},
    "kind.meter_stale": {"en": "meter stale", "vi": "đồng hồ mất tín hiệu"},
    "kind.counter_reset": {"en": "counter reset", "vi": "bộ đếm bị đặt lại"},
    "kind.spike": {"en": "spike", "vi": "tăng đột biến"},
    "kind.quarantine_rate": {"en": "quarantine rate", "vi": "tỷ lệ bản ghi bị cách ly"},
    "kind.ingest_lag": {"en": "ingest lag", "vi": "chậm nhận dữ liệu"},
    "kind.store_unreachable": {"en": "store unreachable", "vi": "không kết nối được kho dữ liệu"},
    "kind.endpoint_disabled": {"en": "endpoint disabled", "vi": "điểm nhận thông báo bị tắt"},
    "kind.exchange_underperforming": {
        "en": "exchange underperforming",
        "vi": "trao đổi dưới mức dự kiến",
    },
    "barrier.legal": {"en": "legal", "vi": "pháp lý"},
    "barrier.technical": {"en": "technical", "vi": "kỹ thuật"},
    "barrier.commercial": {"en": "commercial", "vi": "thương mại"},
    "barrier.consent": {"en": "consent", "vi": "sự đồng ý"},
    "zone.ict": {"en": "ICT", "vi": "giờ Việt Nam"},
    # the ingest's quarantine reasons (ingest/validate.py, ingest/parse)
    "quarantine.quota_exceeded": {"en": "quota exceeded", "vi": "vượt hạn mức"},
    "quarantine.bad_topic": {"en": "bad topic", "vi": "topic không hợp lệ"},
    "quarantine.malformed_json": {"en": "malformed JSON", "vi": "JSON sai định dạng"},
    "quarantine.unknown_park": {"en": "unknown park", "vi": "khu không xác định"},
    "quarantine.payload_too_large": {"en": "payload too large", "vi": "bản tin quá lớn"},
    "quarantine.unknown_tenant": {"en": "unknown tenant", "vi": "doanh nghiệp không xác định"},
    "quarantine.batch_too_large": {"en": "batch too large", "vi": "lô quá lớn"},
    "quarantine.unknown_meter": {"en": "unknown meter", "vi": "đồng hồ không xác định"},
    "quarantine.bad_shape": {"en": "bad shape", "vi": "sai cấu trúc"},
    "quarantine.topic_mismatch": {
        "en": "topic and payload disagree",
        "vi": "topic và nội dung không khớp",
    },
    "quarantine.bad_ts": {"en": "bad timestamp", "vi": "dấu thời gian không hợp lệ"},
    "quarantine.out_of_range": {"en": "out of range", "vi": "ngoài phạm vi"},
    "quarantine.bad_value": {"en": "bad value", "vi": "giá trị không hợp lệ"},
    "quarantine.future_ts": {"en": "timestamp in the future", "vi": "dấu thời gian ở tương lai"},
    "quarantine.not_finite": {"en": "not a finite number", "vi": "không phải số hữu hạn"},
    "quarantine.too_old": {"en": "too old", "vi": "quá cũ"},
    "quarantine.bad_unit": {"en": "bad unit", "vi": "đơn vị không hợp lệ"},
    "quarantine.bad_seq": {"en": "bad sequence number", "vi": "số thứ tự không hợp lệ"},
    "quarantine.store_rejected": {"en": "refused by the store", "vi": "kho dữ liệu từ chối"},
    "quarantine.internal_error": {"en": "internal error", "vi": "lỗi nội bộ"},
}

# Vietnamese names of the shipped knowledge's resources and uses (``labels`` in
# service/knowledge/default.yaml); English comes from ``Knowledge.label`` itself, so a park's
# own label shows as written, and a name missing here falls back to it.
RESOURCES_VI: dict[str, str] = {
    "water.potable": "nước sạch",
    "water.treated_effluent": "nước thải đã xử lý",
    "water.wastewater": "nước thải",
    "energy.electricity": "điện",
    "energy.steam": "hơi nước",
    "energy.waste_heat": "nhiệt thải",
    "energy.solar_export": "điện mặt trời mái nhà phát lên lưới",
    "energy.solar_generation": "điện mặt trời mái nhà",
    "energy.lpg": "khí LPG",
    "energy.natural_gas": "khí thiên nhiên",
    "energy.coal": "than",
    "energy.biomass": "nhiên liệu sinh khối",
    "energy.hot_water": "nước nóng",
    "energy.biogas": "khí sinh học",
    "waste.paper": "giấy thải",
    "waste.fgd_gypsum": "thạch cao FGD",
    "material.recovered_paper": "giấy tái chế",
    "material.gypsum": "thạch cao",
    "material.organic_fertiliser": "phân bón hữu cơ",
    "waste.fly_ash": "tro bay",
    "waste.slag": "xỉ",
    "waste.mill_scale": "vảy cán thép",
    "waste.sludge": "bùn thải",
    "waste.wood_pallets": "pallet gỗ",
    "waste.scrap_plastic": "nhựa phế liệu",
    "material.cement": "xi măng",
    "material.plastic_feedstock": "nguyên liệu nhựa",
    "cooling_makeup": "nước bù làm mát",
    "boiler_feed": "nước cấp lò hơi",
    "product_water": "nước cho sản phẩm",
    "process_water": "nước công nghệ",
    "water_heating": "đun nước",
    "boiler_fuel": "nhiên liệu lò hơi",
}


def t(lang: Language, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang``, its placeholders filled; an unknown key is a bug and
    raises, so a page never shows a bare key."""
    text = MESSAGES[key][lang]
    return text.format(**values) if values else text


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def choose(query: str | None, cookie: str | None, accept_language: str | None = None) -> Language:
    """The language asked for by ``?lang=``, else the one remembered in the cookie, else the
    browser's first choice between the two, else English."""
    for wanted in (query, cookie):
        if wanted in LANGUAGES:
            return wanted
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT


def stage_name(lang: Language, stage: str) -> str:
    return t(lang, f"stage.{stage}")


def term(lang: Language, family: str, value: str) -> str:
    """One of parkflow's own words (a legal status, an alert kind, a barrier) in ``lang``;
    a value the catalogue does not know yet is shown as recorded rather than hidden."""
    key = f"{family}.{value}"
    return t(lang, key) if key in MESSAGES else value


def solver_status(lang: Language, status: str) -> str:
    """``optimal``, or ``stopped: <the solver's message>`` (the message stays as written)."""
    if status == "optimal":
        return t(lang, "solver.optimal")
    why = status.removeprefix("stopped:").strip()
    return t(lang, "solver.stopped", why=why) if status.startswith("stopped:") else status


def resource_name(lang: Language, name: str, label: str) -> str:
    """A resource or use in words: the knowledge's ``label`` in English, its Vietnamese name
    when the catalogue has one."""
    return RESOURCES_VI.get(name, label) if lang == "vi" else label


def catalogue(lang: Language) -> Mapping[str, str]:
    return {key: texts[lang] for key, texts in MESSAGES.items()}
